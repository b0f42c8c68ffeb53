"""Once-only handling of Discord events, across every process on the store.

Discord may deliver an event twice (a RESUME replays events, a reconnect can repeat one), and two
processes running the same shard both receive it. Work on a message or an interaction starts only
after its claim is taken in the store, so whoever comes second does no work at all.

The claim also lives in a small in-process memory: a redelivery to this process is refused without
a store round trip, and while the store is down the bot keeps answering (each event once per
process) instead of going silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)

CLAIM_TTL_SECONDS = 24 * 3600.0
"""How long a claim is kept: far beyond any redelivery (Discord replays a session for minutes) and
an interaction token's 15 minutes."""
LOCAL_CAPACITY = 4096
INTERACTION_CLAIM_WAIT_SECONDS = 1.0
"""How long an interaction's claim may wait on a stalled store. Discord allows 3 seconds for the first
response; past this wait the interaction is handled here, which is safe: Discord accepts one response
per interaction, so a second process's answer is refused by Discord, not shown twice."""


class Work(StrEnum):
    """The kinds of work claimed separately on one Discord id."""

    REPLY = "reply"  # answering a message: chat or describe, whichever takes it
    MODERATION = "moderation"  # checking a message's images
    INTERACTION = "interaction"  # a command, context menu, button or form


class ClaimStore(Protocol):
    """The slice of :class:`bot.store.Store` claims need."""

    async def claim(self, kind: str, key: str, ttl: float) -> bool: ...


class Claims:
    """``await claims.claim("reply", message.id)``: ``True`` for the one caller, in any process, that
    may do this kind of work on it. Kinds keep different work apart (answering a message and
    moderating it are claimed separately)."""

    def __init__(
        self,
        store: ClaimStore,
        *,
        ttl: float = CLAIM_TTL_SECONDS,
        capacity: int = LOCAL_CAPACITY,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._on_refused = on_refused  # told the kind of work each time a claim is refused
        self._ttl = ttl
        self._capacity = capacity
        self._local: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.refused = 0  # claims someone else (or an earlier delivery) held: work not done twice

    async def claim(self, kind: str, key: int | str, *, wait: float | None = None) -> bool:
        """Whether this caller may do ``kind`` of work on ``key``. With ``wait``, a store that has not
        answered by then is given up on, as if it were down."""
        local = (kind, str(key))
        if local in self._local:
            self._refuse(kind)
            return False
        self._local[local] = None
        if len(self._local) > self._capacity:
            self._local.popitem(last=False)
        try:
            taken = await asyncio.wait_for(self._store.claim(kind, str(key), self._ttl), wait)
        except TimeoutError:
            log.warning("Store too slow for the %s claim on %s (waited %s s); handled in this process", kind, key, wait)
            return True
        except Exception as error:
            log.warning("Store unavailable for the %s claim on %s (%s); handling it in this process", kind, key, error)
            return True
        if not taken:
            self._refuse(kind)
            log.debug("%s %s is claimed already (a redelivery, or another process): not handled here", kind, key)
        return taken

    def _refuse(self, kind: str) -> None:
        self.refused += 1
        if self._on_refused is not None:
            self._on_refused(str(kind))
