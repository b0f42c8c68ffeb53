"""Without the privileged Message Content intent the bot still describes on request.

Discord then delivers guild messages that do not mention the bot without content or attachments,
so automatic descriptions cannot happen; mentions, `/describe` and the "Describe image" context
menu (whose interaction carries the target message in full) still work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Glimpse
from bot.settings import Settings
from tests.e2e.helpers import PLACEHOLDER, png, reply_to
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, GatewayConfig
from tests.fakes.vlm import VLMServer


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(gateway=GatewayConfig(message_content_granted=False))


@pytest.fixture
async def glimpse(emulator: DiscordEmulator, settings_env: dict[str, str]) -> AsyncIterator[Glimpse]:
    """Glimpse identifying without the Message Content intent (with it, the gateway would refuse)."""
    bot = Glimpse(Settings.from_env(settings_env), message_content=False, sync_commands=True)
    async with emulator.running(bot):
        yield bot


async def test_context_menu_and_mentions_work_without_message_content(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, carol, images = emulator.user("bob"), emulator.user("carol"), emulator.channel("images")
    vlm.script("A khaki square.", "It is khaki.")

    # Posted in a describe channel, but the bot cannot see the attachment: no automatic reply.
    target = await emulator.post_message(carol, images, "", attachments=[("sq.png", png(color="khaki"))])
    interaction = await emulator.use_message_command(bob, target, "Describe image")
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda text: text == "A khaki square.")
    assert interaction.original_history == ["", PLACEHOLDER, "A khaki square."]

    question = f"{emulator.bot_user.mention} what colour is it?"
    asked = await emulator.post_message(bob, images, question, attachments=[("sq.png", png(color="khaki"))])
    reply = await reply_to(emulator, asked)
    await emulator.wait_for_content(reply, lambda text: text == "It is khaki.")

    assert [len(r.images) for r in vlm.completions] == [1, 1]
    assert [m for m in emulator.bot_messages(images) if m.reference_id == target.id] == []
