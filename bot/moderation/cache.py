"""Reuse verdicts for the same or a near-identical image, per guild and per policy.

Layout in the key-value store (namespace ``moderation-verdicts``, keys prefixed with the guild and
the policy fingerprint, so changing the rules or categories starts a fresh cache):

* ``x:<64-bit hash>``: entries whose lookup hash is exactly this (the common exact repost);
* ``b<i>:<16-bit band>`` for i in 0..3: entries sharing that band of their lookup hash. By the
  pigeonhole principle two hashes within 3 bits share at least one band; copies a little further
  apart usually do too. Each candidate is then confirmed with both hashes (``phash.is_near``).

Each value is ``{"entries": [...]}``, newest first, at most ``MAX_ENTRIES_PER_KEY``; every entry
carries its own expiry, so a key refreshed by a newer entry never revives an old verdict. Two
concurrent writes to one key may drop an entry: that costs one model request later, nothing more.
Needs-review verdicts are never cached: they reflect a failed answer, not the image. Clean verdicts
are only reused for a closer match than flagged ones (``CLEAN_CONFIRM_DISTANCE``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.moderation.config import ModerationSettings
from bot.moderation.phash import (
    CONFIRM_BITS,
    ImageFingerprint,
    hash_from_hex,
    hash_to_hex,
)
from bot.moderation.verdict import Verdict, VerdictError

log = logging.getLogger(__name__)

NAMESPACE = "moderation-verdicts"
BANDS = 4
BAND_BITS = 16
MAX_ENTRIES_PER_KEY = 8
# A "clean" verdict reused for the wrong image lets that image through unseen, while a wrong
# "flagged" one still reaches a human in the mod-log; so clean verdicts demand a closer match.
# Re-encoded copies measured <= 7 bits, resized ones mostly <= 8 (bench/moderation.py).
CLEAN_CONFIRM_DISTANCE = 12


class CacheStore(Protocol):
    """The slice of the store this cache needs (values are JSON-compatible dicts)."""

    async def cache_get(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    async def cache_set(self, namespace: str, key: str, value: dict[str, Any], ttl: float) -> None: ...


@dataclass(frozen=True)
class CacheHit:
    verdict: Verdict
    exact: bool  # the very same lookup hash (not only a near one)
    lookup_distance: int
    confirm_distance: int


@dataclass(frozen=True)
class _Entry:
    image: ImageFingerprint
    verdict: Verdict
    expires: float
    raw: dict[str, Any]


def band_keys(lookup_hash: int) -> list[str]:
    """The four band keys of a 64-bit hash, most significant band first."""
    mask = (1 << BAND_BITS) - 1
    return [f"b{i}:{(lookup_hash >> (BAND_BITS * (BANDS - 1 - i))) & mask:04x}" for i in range(BANDS)]


class VerdictCache:
    def __init__(self, store: CacheStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def get(
        self, guild_id: int, settings: ModerationSettings, image: ImageFingerprint
    ) -> CacheHit | None:
        """A still-valid verdict for this image or a near-identical one, the closest first."""
        if settings.cache_seconds <= 0:
            return None
        prefix = _prefix(guild_id, settings)
        now = self._clock()
        exact_key = f"x:{hash_to_hex(image.lookup)}"
        hit = self._best(image, await self._entries(prefix + exact_key, settings, now))
        if hit is not None:
            return hit
        candidates: list[_Entry] = []
        for key in band_keys(image.lookup):
            candidates.extend(await self._entries(prefix + key, settings, now))
        return self._best(image, candidates)

    async def put(
        self, guild_id: int, settings: ModerationSettings, image: ImageFingerprint, verdict: Verdict
    ) -> None:
        """Remember a verdict for ``settings.cache_seconds`` (not at all when that is 0)."""
        if settings.cache_seconds <= 0 or verdict.requires_review:
            return
        prefix = _prefix(guild_id, settings)
        now = self._clock()
        entry = {
            "lookup": hash_to_hex(image.lookup),
            "confirm": hash_to_hex(image.confirm, CONFIRM_BITS),
            "verdict": verdict.to_dict(),
            "expires": now + settings.cache_seconds,
        }
        for key in [f"x:{entry['lookup']}", *band_keys(image.lookup)]:
            kept = [e.raw for e in await self._entries(prefix + key, settings, now) if e.image != image]
            entries = [entry, *kept][:MAX_ENTRIES_PER_KEY]
            ttl = max(e["expires"] for e in entries) - now
            await self._store.cache_set(NAMESPACE, prefix + key, {"entries": entries}, ttl)

    async def _entries(self, key: str, settings: ModerationSettings, now: float) -> list[_Entry]:
        value = await self._store.cache_get(NAMESPACE, key)
        if not value:
            return []
        raw_entries = value.get("entries")
        if not isinstance(raw_entries, list):
            log.debug("Ignoring a malformed verdict cache value under %s", key)
            return []
        entries = []
        for raw in raw_entries:
            try:
                entry = _Entry(
                    image=ImageFingerprint(
                        lookup=hash_from_hex(raw["lookup"]),
                        confirm=hash_from_hex(raw["confirm"], CONFIRM_BITS),
                    ),
                    verdict=Verdict.from_dict(raw["verdict"], allowed_categories=settings.categories),
                    expires=float(raw["expires"]),
                    raw=raw,
                )
            except (KeyError, TypeError, ValueError, VerdictError):
                log.debug("Ignoring a malformed verdict cache entry under %s", key)
                continue
            if entry.expires > now:
                entries.append(entry)
        return entries

    @staticmethod
    def _best(image: ImageFingerprint, entries: list[_Entry]) -> CacheHit | None:
        best: CacheHit | None = None
        for entry in entries:
            if not image.is_near(entry.image):
                continue
            lookup_distance, confirm_distance = image.distance(entry.image)
            if not entry.verdict.flagged and confirm_distance > CLEAN_CONFIRM_DISTANCE:
                continue
            if best is None or (lookup_distance + confirm_distance) < (
                best.lookup_distance + best.confirm_distance
            ):
                best = CacheHit(
                    verdict=entry.verdict,
                    exact=lookup_distance == 0,
                    lookup_distance=lookup_distance,
                    confirm_distance=confirm_distance,
                )
        return best


def _prefix(guild_id: int, settings: ModerationSettings) -> str:
    return f"{guild_id}:{settings.policy_fingerprint()}:"
