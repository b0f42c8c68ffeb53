"""A free-response channel on a bot without the Message Content intent: Discord delivers the messages
that do not mention it empty, so they are not answered (no "(no text)" answers), mentions still are,
and `/settings chat` says why when it is set."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Glimpse
from bot.settings import Settings
from tests.e2e.server_settings import answer_of, answered, bot_replies_to, run_settings
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, GatewayConfig
from tests.fakes.vlm import VLMServer


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(gateway=GatewayConfig(message_content_granted=False))


@pytest.fixture
async def glimpse(emulator: DiscordEmulator, settings_env: dict[str, str]) -> AsyncIterator[Glimpse]:
    bot = Glimpse(Settings.from_env(settings_env), message_content=False, sync_commands=True)
    async with emulator.running(bot):
        yield bot


async def test_unmentioned_messages_are_not_answered_without_the_intent(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    done = answer_of(await run_settings(emulator, alice, "chat", {"channel": general, "mode": "every-message"}))
    assert "Message Content intent" in done
    unseen = await emulator.post_message(bob, general, "hello there")
    vlm.script("Hello.")
    mention = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> hello?")
    await answered(emulator, vlm, mention, "Hello.")
    assert bot_replies_to(emulator, unseen) == [] and len(vlm.completions) == 1
    assert vlm.completions[0].texts[-1] == "bob: hello?"
