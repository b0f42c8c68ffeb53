"""Stopping waits for the bot's own work in progress, whatever task discord.py runs it in: a mod-log
click that is still waiting for the store when the bot is asked to stop is carried out."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bot.app import Glimpse
from bot.moderation import ButtonAction
from tests.e2e.conftest import bot_environment
from tests.e2e.test_moderation import SCAM, buttons, next_entry, picture, post_image, setup_moderation, verdict
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer
from tests.store.conftest import redis_url  # noqa: F401  (the fixture)

PAUSE_MS = 800


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path, redis_url: str) -> dict[str, str]:  # noqa: F811
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return bot_environment(emulator, vlm, redis_url)


async def test_a_click_waiting_for_the_store_is_finished_before_the_bot_stops(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, redis_url: str  # noqa: F811
) -> None:
    await setup_moderation(emulator)  # log only: the Delete button is the moderator's to press
    vlm.script(verdict(SCAM))
    posted = await post_image(emulator, "bob", picture(600))
    entry = await next_entry(emulator)

    custom_id = buttons(entry)[ButtonAction.DELETE]["custom_id"]
    clicked = await emulator.click_button(emulator.user("alice"), entry, custom_id)
    await emulator.wait_for_response(clicked)  # the click is being handled: it deferred
    with redis.Redis.from_url(redis_url) as client:  # and now the store answers nothing for a moment
        client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
    await glimpse.close()  # asked to stop while the click waits for the store

    assert posted.deleted
    assert "deleted the message" in str(entry.embeds)
