"""Once-only handling of Discord events within this process.

Discord may deliver a message twice (a RESUME replays events, a reconnect can repeat one); every cog
that acts on messages claims the id first, so a redelivered event does no work.
"""

from __future__ import annotations

from collections import OrderedDict


class SeenMessages:
    """Message ids this process has already handled, so a redelivered event is not answered twice."""

    def __init__(self, capacity: int = 4096) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._capacity = capacity

    def claim(self, message_id: int) -> bool:
        """True the first time an id is seen, False afterwards."""
        if message_id in self._ids:
            return False
        self._ids[message_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True
