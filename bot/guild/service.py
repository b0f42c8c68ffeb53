"""The per-server settings as the cogs see them: read through a short cache, changed by compare-and-set.

Reads are served from process memory for up to :data:`CACHE_SECONDS` (every message asks "what does
this channel do?", so the store is not read for each). A change made through :meth:`GuildSettingsService.update`
invalidates its guild's entry at once and then tells every ``on_change`` listener, which is where
several processes can learn about it: a listener may publish the guild id, and the receiving process
calls :meth:`GuildSettingsService.invalidate`. Without one, another process sees a change within
:data:`CACHE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.guard.limits import ServerLimits
from bot.guild.config import SETTINGS_KEY, GuildSettings, GuildSettingsError
from bot.guild.locales import KnownLocales
from bot.guild.policy import ChannelBehaviour, Decision, Defaults, Feature, Member, Place, behaviour, decide
from bot.store import JSONDict, SettingsChange, Store

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0
"""How long a guild's settings are served from memory before the store is read again."""
READ_TIMEOUT_SECONDS = 1.5
"""A settings read that takes longer (a stalled store) gives way to the last known settings, so an
interaction is still acknowledged within Discord's 3 seconds."""


@dataclass(frozen=True)
class StoredSettings:
    settings: GuildSettings
    version: int
    """The store's version of the record (0: never changed); a form passes it back to :meth:`update`."""


Change = Callable[[GuildSettings], GuildSettings]


class GuildSettingsService:
    def __init__(
        self,
        store: Store,
        defaults: Defaults,
        *,
        cache_seconds: float = CACHE_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.locales = KnownLocales(store)  # people's Discord languages, for alt text in "auto"
        self.cache_seconds = cache_seconds
        self.read_timeout = read_timeout
        self._clock = clock
        self._cache: dict[int, tuple[float, StoredSettings]] = {}
        self.on_change: list[Callable[[int], None]] = []
        """Called with the guild id after every change this process made (e.g. to tell other processes)."""

    async def get(self, guild_id: int) -> StoredSettings:
        """The guild's settings (cached). A store that cannot be read (or not within ``read_timeout``)
        serves the last known settings, else the defaults, so an outage does not silence the bot; a
        bad record reads as the defaults."""
        cached = self._cache.get(guild_id)
        if cached is not None and self._clock() - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            async with asyncio.timeout(self.read_timeout):
                stored = await self._load(guild_id)
        except Exception:
            log.warning("Could not read the settings of guild %s; using the last known", guild_id, exc_info=True)
            if cached is None:
                return StoredSettings(GuildSettings(), 0)
            self._cache[guild_id] = (self._clock(), cached[1])  # not asked again for a while: no pile-up
            return cached[1]
        self._cache[guild_id] = (self._clock(), stored)
        return stored

    def invalidate(self, guild_id: int) -> None:
        """Forget the cached settings of ``guild_id``: the next read goes to the store."""
        self._cache.pop(guild_id, None)

    def invalidate_all(self) -> None:
        """Forget every cached guild (after changes may have been missed, see :mod:`bot.guild.shared`)."""
        self._cache.clear()

    async def _load(self, guild_id: int) -> StoredSettings:
        record = await self.store.load_guild_settings(guild_id, SETTINGS_KEY)
        return StoredSettings(_readable(guild_id, record.value), record.version)

    async def behaviour(self, place: Place) -> ChannelBehaviour:
        """What the channel does (see :func:`bot.guild.policy.behaviour`)."""
        settings = (await self.get(place.guild_id)).settings if place.guild_id is not None else GuildSettings()
        return behaviour(settings, self.defaults, place)

    async def limits(self, guild_id: int) -> ServerLimits:
        """The server's own spending limits (cached like everything here): the guard's per-server input."""
        return (await self.get(guild_id)).settings.limits

    async def decide(self, member: Member, place: Place, feature: Feature) -> Decision:
        """May ``member`` use ``feature`` at ``place`` (see :func:`bot.guild.policy.decide`)."""
        # /settings depends on Manage Server alone: no store read before the command can answer
        needs_record = place.guild_id is not None and feature != Feature.SETTINGS
        settings = (await self.get(place.guild_id)).settings if needs_record else GuildSettings()
        return decide(settings, self.defaults, member, place, feature)

    async def update(
        self, guild_id: int, change: Change, *, actor_id: int, summary: str, expected_version: int | None = None
    ) -> StoredSettings:
        """Apply ``change`` by compare-and-set and log it as ``summary`` by ``actor_id``.

        Raises :class:`GuildSettingsError` (an invalid change) or
        :class:`bot.store.SettingsConflictError` (``expected_version`` is not the stored one any more);
        either way nothing changed.
        """
        stored = await self.store.update_guild_settings(
            guild_id,
            SETTINGS_KEY,
            lambda raw: change(_readable(guild_id, raw)).to_dict(),
            actor_id=actor_id,
            summary=summary,
            expected_version=expected_version,
        )
        self.invalidate(guild_id)
        log.info("User %s changed the settings of guild %s: %s", actor_id, guild_id, summary)
        for listener in self.on_change:
            try:
                listener(guild_id)
            except Exception:
                log.exception("A settings change listener failed")
        return StoredSettings(GuildSettings.from_dict(stored.value), stored.version)

    async def changes(self, guild_id: int, *, limit: int = 5) -> list[SettingsChange]:
        """Who changed this server's settings (and its moderation settings), newest first."""
        return await self.store.settings_changes(guild_id, limit=limit)


def _readable(guild_id: int, raw: JSONDict | None) -> GuildSettings:
    """The stored record, or the defaults when it is invalid (so the next change replaces it)."""
    try:
        return GuildSettings.from_dict(raw)
    except GuildSettingsError as error:
        log.error("Stored settings of guild %s are invalid (%s); using the defaults", guild_id, error)
        return GuildSettings()
