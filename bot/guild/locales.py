"""The Discord language of people who used an interaction, for alt text in ``auto`` language.

Discord tells a bot someone's client language only with an interaction they start, never with a
message. So every interaction's locale is remembered (in the store, shared by every process, for
:data:`LOCALE_TTL_SECONDS`), and the automatic alt text of that person's later images follows it.
A small bounded memo keeps this process from writing the same locale again on each interaction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from bot.store import Store

log = logging.getLogger(__name__)

NAMESPACE = "user-locale"
LOCALE_TTL_SECONDS = 90 * 86400.0
"""How long a person's language is remembered after their last interaction."""
MEMO_SIZE = 10_000
"""People whose language this process keeps in memory (the most recent)."""


class KnownLocales:
    def __init__(self, store: Store, *, ttl: float = LOCALE_TTL_SECONDS, memo_size: int = MEMO_SIZE) -> None:
        self.store = store
        self.ttl = ttl
        self._memo: OrderedDict[int, str] = OrderedDict()
        self._memo_size = memo_size

    async def remember(self, user_id: int, locale: str) -> None:
        """Keep ``locale`` as ``user_id``'s language (a store failure is logged, not raised)."""
        if self._memo.get(user_id) == locale:
            self._memo.move_to_end(user_id)
            return
        try:
            await self.store.cache_set(NAMESPACE, str(user_id), {"locale": locale}, ttl=self.ttl)
        except Exception:
            log.warning("Could not remember the language of user %s", user_id, exc_info=True)
            return
        self._keep(user_id, locale)

    async def of(self, user_id: int) -> str | None:
        """``user_id``'s Discord language as last seen in an interaction, or ``None``."""
        if user_id in self._memo:
            return self._memo[user_id]
        try:
            found = await self.store.cache_get(NAMESPACE, str(user_id))
        except Exception:
            log.warning("Could not read the language of user %s", user_id, exc_info=True)
            return None
        if found is None:
            return None
        self._keep(user_id, str(found["locale"]))
        return self._memo[user_id]

    def _keep(self, user_id: int, locale: str) -> None:
        self._memo[user_id] = locale
        self._memo.move_to_end(user_id)
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
