"""Moderation over its own daily budget: images are not sent to the model and take no action; each is
recorded as needing review, and the mod-log gets one notice per day, never one entry per image."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.app import Glimpse
from bot.guard.limits import next_midnight
from tests.e2e.conftest import bot_environment
from tests.e2e.test_moderation import SCAM, by_purpose, deletes, picture, post_image, setup_moderation, verdict
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    # Smaller than any one check's reservation (its prompt, image and max_tokens): nothing fits.
    return bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'glimpse.db'}", BUDGET_MODERATION_DAILY_TOKENS="100")


class Recorded:
    """Counts verdicts the moderation service stored (calls through)."""

    def __init__(self, glimpse: Glimpse) -> None:
        self.verdicts: list[Any] = []
        self._changed = asyncio.Event()
        service = glimpse.moderation
        record = service.record_verdict

        async def counted(guild_id: int, result: Any, **ids: Any) -> None:
            await record(guild_id, result, **ids)
            self.verdicts.append(result.verdict)
            self._changed.set()

        service.record_verdict = counted  # type: ignore[method-assign]

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.verdicts) < count:
                self._changed.clear()
                await self._changed.wait()


async def test_moderation_over_budget_posts_one_notice_a_day_and_takes_no_action(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator, medium="delete")  # a scam (severity 2) would be deleted
    vlm.respond_with(by_purpose(verdict(SCAM)))
    recorded = Recorded(glimpse)
    for seed in range(3):
        await post_image(emulator, "bob", picture(seed))
    await recorded.wait(3)
    mod_log = emulator.channel("mod-log")
    # the notice goes out after the verdict it follows is recorded (a claim, then a paced send)
    await emulator.wait_for(lambda: emulator.bot_messages(mod_log), what="the day's notice")
    [notice] = emulator.bot_messages(mod_log)
    midnight = int(next_midnight(glimpse.guard.clock()))
    assert notice.content == (
        "This server's daily moderation budget (100 tokens) has no room for more checks today. "
        f"It resets at midnight UTC (<t:{midnight}:R>). "
        "Until then, images posted in watched channels are not checked; each is recorded as needing review."
    )
    assert not notice.embeds and vlm.completions == [] and deletes(emulator) == []
    assert all(v.requires_review for v in recorded.verdicts)

    glimpse.guard.clock = lambda: midnight + 60.0  # the next day: one more notice, then quiet again
    for seed in (3, 4):
        await post_image(emulator, "carol", picture(seed))
    await recorded.wait(5)
    await emulator.wait_for(lambda: len(emulator.bot_messages(mod_log)) >= 2, what="the next day's notice")
    assert len(emulator.bot_messages(mod_log)) == 2 and vlm.completions == [] and deletes(emulator) == []
