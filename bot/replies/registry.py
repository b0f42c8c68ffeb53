"""The live replies still on screen, by the ids of their messages, so that a deletion stops one at once.

A reply learns of its deletion from Discord in two ways: a 404 on its next edit (which may be a minute
away while the model has not said its first word), or the gateway's MESSAGE_DELETE, which comes at
once. :class:`~bot.replies.live.LiveReply` registers each message it posts here and unregisters them when
it is done; the deletion listener (``cogs/lifecycle.py``) calls :meth:`LiveRegistry.deleted` for every
deleted message id. Message ids are unique across Discord, so one registry (the bot's ``bot.live``)
serves the whole process.

Entries hold their reply weakly: a reply its caller abandoned without finishing it leaves no entry
behind, whatever path it took.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Deletable(Protocol):
    """What the registry needs of a reply: being told that one of its messages is gone, or to stop."""

    def mark_deleted(self) -> None: ...

    def stop(self) -> None: ...


class LiveRegistry:
    """Message id -> the live reply that posted it. ``on_finished`` hears how many sends and edits each
    finished reply made (the bot's metrics)."""

    def __init__(self, on_finished: Callable[[int], None] | None = None) -> None:
        self._replies: weakref.WeakValueDictionary[int, Deletable] = weakref.WeakValueDictionary()
        self._on_finished = on_finished

    def __len__(self) -> int:
        return len(self._replies)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._replies

    def register(self, message_id: int, reply: Deletable) -> None:
        self._replies[message_id] = reply

    def unregister(self, message_id: int) -> None:
        self._replies.pop(message_id, None)

    def finished(self, requests: int) -> None:
        """A reply is done, after ``requests`` sends and edits."""
        if self._on_finished is not None:
            self._on_finished(requests)
    def get(self, message_id: int) -> Deletable | None:
        """The live reply that posted ``message_id``, if it is still live."""
        return self._replies.get(message_id)

    def deleted(self, message_id: int) -> bool:
        """Tell the reply owning ``message_id`` (if any is live) that it was deleted; True if one was."""
        reply = self._replies.pop(message_id, None)
        if reply is None:
            return False
        log.info("Message %s of a live reply was deleted; stopping that reply", message_id)
        reply.mark_deleted()
        return True

