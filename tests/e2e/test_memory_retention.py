"""The retention purge end to end: the real bot, started on a store holding a 40-day-old conversation.

MEMORY_RETENTION_DAYS is in days, so the store is filled (through its public API, before the bot
starts) with turns created 40 days ago, as a month of use would leave it; the bot's own purge (at
start, then hourly) must delete them and their images, keep recent ones, and the next question must
not see them. Runs on SQLite and on a real redis-server, where TTLs alone would keep an active
channel's old turns.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.app import Glimpse
from bot.store import Store, open_store
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
    photo_jpeg,
)
from tests.e2e.test_conversation import RED, Talk, request_text
from tests.e2e.test_memory_over_time import remember, talk  # noqa: F401  (fixture)
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer
from tests.store.conftest import redis_url, store_url  # noqa: F401  (fixtures: a fresh SQLite file or Redis db)

DAY = 86400.0
OLD_HASHES: list[str] = []
RECENT_HASHES: list[str] = []


@pytest.fixture
async def settings_env(emulator: DiscordEmulator, vlm: VLMServer, store_url: str) -> dict[str, str]:  # noqa: F811
    """The bot's environment (30 retention days), after filling its store: #general's exchange is 40
    days old, the thread's an hour old, each with an image (the bot starts after this fixture)."""
    general, thread = emulator.channel("general"), emulator.channel("general-thread")
    now = time.time()
    store = await open_store(store_url)
    try:
        OLD_HASHES[:] = await remember(
            store, general.id, "OLD SECRET", "old answer", at=now - 40 * DAY, message_id=1, image=RED[1]
        )
        RECENT_HASHES[:] = await remember(
            store, thread.id, "recent question", "recent answer", at=now - 3600, message_id=2,
            image=photo_jpeg(640, 480),
        )
    finally:
        await store.close()
    return bot_environment(emulator, vlm, store_url)


async def wait_until_empty(store: Store, channel_id: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """The purge runs in its own task and signals nothing, so poll (every 20 ms, up to a deadline)."""
    async with asyncio.timeout(timeout):
        while await store.history(channel_id):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_the_retention_purge_deletes_old_turns_and_their_images(
    talk: Talk, glimpse: Glimpse, emulator: DiscordEmulator  # noqa: F811
) -> None:
    general, thread = emulator.channel("general"), emulator.channel("general-thread")
    store = glimpse.store
    await wait_until_empty(store, general.id)

    assert await store.get_images(OLD_HASHES) == {}
    assert set(await store.get_images(RECENT_HASHES)) == set(RECENT_HASHES)
    assert [t.text for t in await store.history(thread.id)] == ["recent question", "recent answer"]

    _, request = await talk.ask(emulator.user("alice"), general, "what was the secret?", answer="No idea.")
    assert "OLD SECRET" not in request_text(request)
    _, in_thread = await talk.ask(emulator.user("alice"), thread, "and here?", answer="A photo.")
    assert "recent question" in request_text(in_thread)
