"""A settings change made in one process is in force in every other at once.

Each process serves a guild's settings from a short cache (:class:`~bot.guild.service.GuildSettingsService`).
Every change is announced on the store (:data:`SETTINGS_TOPIC`, the guild id), and every process
forgets its cached copy of that guild when it hears one. While the store cannot be heard (Redis
restarting), the cache's own lifetime bounds how stale a copy can be; on hearing again, everything
cached is forgotten (a change may have been missed meanwhile).
"""

from __future__ import annotations

import asyncio
import logging

from bot.guild.service import GuildSettingsService
from bot.store import Store

log = logging.getLogger(__name__)

SETTINGS_TOPIC = "guild-settings"
RELISTEN_SECONDS = 2.0


class SharedSettings:
    """Announces this process's changes and follows everyone's (run :meth:`follow` as a task)."""

    def __init__(self, service: GuildSettingsService, store: Store) -> None:
        self._service = service
        self._store = store
        self._announcing: set[asyncio.Task[None]] = set()
        self.listening = asyncio.Event()
        """Set while other processes' changes are heard."""
        service.on_change.append(self._announce)

    def _announce(self, guild_id: int) -> None:
        task = asyncio.create_task(self._notify(guild_id), name=f"glimpse-announce-settings-{guild_id}")
        self._announcing.add(task)  # a strong reference until it is done
        task.add_done_callback(self._announcing.discard)

    async def _notify(self, guild_id: int) -> None:
        try:
            await self._store.notify(SETTINGS_TOPIC, str(guild_id))
        except Exception:
            log.warning("Could not announce the settings change of guild %s", guild_id, exc_info=True)

    async def follow(self) -> None:
        """Forever: forget a guild's cached settings whenever any process changes them."""
        while True:
            try:
                async with self._store.listen(SETTINGS_TOPIC) as changes:
                    self._service.invalidate_all()  # whatever changed while nobody listened
                    self.listening.set()
                    async for guild_id in changes:
                        self._service.invalidate(int(guild_id))
            except Exception as error:
                log.warning("Not hearing settings changes from other processes (%s); retrying", error)
            self.listening.clear()
            await asyncio.sleep(RELISTEN_SECONDS)
