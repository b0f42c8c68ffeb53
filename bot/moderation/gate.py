"""A watched message's images wait for their moderation verdict before describe or chat use them.

Describe and chat ask :meth:`VerdictGate.flagged` for a message in a watched channel; the moderation
of that message settles it (flagged or not) when its check is done. Either may come first: the one
who asks first creates the future. A verdict that never comes (moderation failed in a way that did
not settle, or another process moderates it) counts as flagged after ``timeout``: an image whose
verdict is unknown is not described.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

VERDICT_WAIT_SECONDS = 120.0
"""How long describe and chat wait for a watched image's verdict (a slow model, a long queue)."""


class VerdictGate:
    def __init__(self, timeout: float = VERDICT_WAIT_SECONDS) -> None:
        self.timeout = timeout
        self._verdicts: dict[int, asyncio.Future[bool]] = {}

    def _future(self, message_id: int) -> asyncio.Future[bool]:
        future = self._verdicts.get(message_id)
        if future is None:
            future = self._verdicts[message_id] = asyncio.get_running_loop().create_future()
            # kept as long as a late asker may come, then forgotten (bounded memory)
            asyncio.get_running_loop().call_later(self.timeout * 2, self._verdicts.pop, message_id, None)
        return future

    def settle(self, message_id: int, *, flagged: bool) -> None:
        """The message's moderation is done: ``flagged`` if any of its images was."""
        future = self._future(message_id)
        if not future.done():
            future.set_result(flagged)

    async def flagged(self, message_id: int) -> bool:
        """Wait for the message's verdict: whether any of its images was flagged."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._future(message_id)), self.timeout)
        except TimeoutError:
            log.warning("No moderation verdict for message %s in %.0f s; its images are not used", message_id,
                        self.timeout)
            return True
