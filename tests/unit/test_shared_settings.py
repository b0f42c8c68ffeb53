"""SharedSettings: a change made through one process's settings service is seen by another's at once,
although that one had the guild cached (two services on one store file, as two processes)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.guild import Defaults, GuildSettingsService, SharedSettings
from bot.store import open_store

GUILD, CHANNEL = 333, 444


async def test_a_change_in_one_process_reaches_the_cache_of_the_other(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'glimpse.db'}"
    async with await open_store(url) as here_store, await open_store(url) as there_store:
        here = GuildSettingsService(here_store, Defaults(), cache_seconds=3600)
        there = GuildSettingsService(there_store, Defaults(), cache_seconds=3600)  # never expires by itself
        shared = [SharedSettings(here, here_store), SharedSettings(there, there_store)]
        following = [asyncio.create_task(each.follow()) for each in shared]
        try:
            async with asyncio.timeout(5):
                for each in shared:
                    await each.listening.wait()
            cached = await there.get(GUILD)
            await here.update(GUILD, lambda s: s.with_describe(CHANNEL, True), actor_id=1, summary="describe on")
            async with asyncio.timeout(5):
                while (await there.get(GUILD)).version == cached.version:  # noqa: ASYNC110 (polled store)
                    await asyncio.sleep(0.05)
            assert (await there.get(GUILD)).version == 1
        finally:
            for task in following:
                task.cancel()
            await asyncio.gather(*following, return_exceptions=True)
