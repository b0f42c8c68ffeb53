"""**Describe image** and **Extract text** on a message moderation flagged (left up, only logged) say so
and repeat nothing of it: no description or transcript of a scam (its link as a clickable bot message);
the verdict comes from the cache, no second check. On a clean message they work as usual."""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from bot.moderation.discord import FLAGGED_IMAGE
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.e2e.test_moderation import CLEAN, SCAM, moderation_requests, next_entry, picture, setup_moderation, verdict
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import RecordedRequest, VLMServer

pytestmark = pytest.mark.timeout(60)
READ = "FREE NITRO: scan the code at https://nitro-gift.example/claim"


def answers(moderation: dict[str, object]) -> object:
    return lambda request: verdict(moderation) if "moderation classifier" in request.prompt else READ


def others(vlm: VLMServer) -> list[RecordedRequest]:
    return [r for r in vlm.completions if "moderation classifier" not in r.prompt]


@pytest.mark.parametrize("menu", ["Describe image", "Extract text"])
async def test_a_flagged_message_is_neither_described_nor_read(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, menu: str
) -> None:
    await setup_moderation(emulator)  # watches #general; severity 2 is only logged
    vlm.respond_with(answers(SCAM))  # type: ignore[arg-type]
    general = emulator.channel("general")
    scam = await emulator.post_message(emulator.user("dave"), general, "", attachments=[("nitro.png", picture(61))])
    await next_entry(emulator)

    used = await emulator.use_message_command(emulator.user("carol"), scam, menu)
    await emulator.wait_for(lambda: used.original is not None and used.original.content == FLAGGED_IMAGE)
    assert others(vlm) == [] and len(moderation_requests(vlm)) == 1
    assert not any("nitro-gift" in m.content for m in emulator.bot_messages(general))
    assert_discord_refused_nothing(emulator)


@pytest.mark.parametrize("menu", ["Describe image", "Extract text"])
async def test_a_clean_message_is_described_and_read(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, menu: str
) -> None:
    await setup_moderation(emulator)
    vlm.respond_with(answers(CLEAN))  # type: ignore[arg-type]
    general = emulator.channel("general")
    poster = await emulator.post_message(emulator.user("dave"), general, "", attachments=[("cat.png", picture(62))])
    await vlm.wait_for(lambda: len(moderation_requests(vlm)) == 1)

    used = await emulator.use_message_command(emulator.user("carol"), poster, menu)
    await emulator.wait_for(lambda: used.original is not None and READ in used.original.content)
    assert len(others(vlm)) == 1 and len(moderation_requests(vlm)) == 1
    assert_discord_refused_nothing(emulator)
