"""The live replies still on screen, by the ids of their messages and of the message they are about,
so that a deletion stops one at once.

A reply learns of its deletion from Discord in two ways: a 404 on its next edit (which may be a minute
away while the model has not said its first word), or the gateway's MESSAGE_DELETE, which comes at
once. :class:`~bot.replies.live.LiveReply` registers each message it posts here and unregisters them when
it is done; the deletion listener (``cogs/lifecycle.py``, through :class:`~bot.replies.withdrawal.Withdrawal`)
calls :meth:`LiveRegistry.deleted` for every deleted message id. A reply about a message (the question
it answers, the image it describes) is registered under that message's id too, so deleting the
question withdraws the reply (:meth:`LiveRegistry.source_deleted`), and a reply about a message deleted
a moment before it was made is never shown (:meth:`LiveRegistry.is_gone`). Message ids are unique across
Discord, so one registry (the bot's ``bot.live``) serves the whole process.

Entries hold their reply weakly: a reply its caller abandoned without finishing it leaves no entry
behind, whatever path it took.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

GONE_KEPT = 4096
"""Deleted message ids remembered, so a reply about one that starts a moment later is never shown."""


class Deletable(Protocol):
    """What the registry needs of a reply: being told that one of its messages is gone, or to stop."""

    def mark_deleted(self) -> None: ...

    def stop(self) -> None: ...


class Withdrawable(Deletable, Protocol):
    """A reply about a message, which goes when that message does."""

    @property
    def channel_id(self) -> int:
        """Where the reply's messages are."""
        ...

    async def withdraw(self) -> list[int]:
        """Stop for good (closing the model request); once no request is in flight, the ids posted."""
        ...

    async def ended(self) -> None:
        """Until the caller is done with the reply (it was finished, failed or its stream raised)."""
        ...


class LiveRegistry:
    """Message id -> the live reply that posted it; source message id -> the live reply about it.
    ``on_finished`` hears how many sends and edits each finished reply made (the bot's metrics)."""

    def __init__(self, on_finished: Callable[[int], None] | None = None) -> None:
        self._replies: weakref.WeakValueDictionary[int, Deletable] = weakref.WeakValueDictionary()
        self._about: weakref.WeakValueDictionary[int, Withdrawable] = weakref.WeakValueDictionary()
        self._gone: OrderedDict[int, None] = OrderedDict()
        self._on_finished = on_finished

    def __len__(self) -> int:
        return len(self._replies)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._replies

    def register(self, message_id: int, reply: Deletable) -> None:
        self._replies[message_id] = reply

    def unregister(self, message_id: int) -> None:
        self._replies.pop(message_id, None)

    def register_about(self, source_id: int, reply: Withdrawable) -> None:
        """``reply`` is about message ``source_id`` (the newest reply about it wins)."""
        self._about[source_id] = reply

    def unregister_about(self, source_id: int, reply: Withdrawable) -> None:
        if self._about.get(source_id) is reply:
            del self._about[source_id]

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

    def source_deleted(self, source_id: int) -> Withdrawable | None:
        """Message ``source_id`` was deleted: the live reply about it (if any), taken off the registry."""
        self._gone[source_id] = None
        self._gone.move_to_end(source_id)
        while len(self._gone) > GONE_KEPT:
            self._gone.popitem(last=False)
        return self._about.pop(source_id, None)

    def is_gone(self, source_id: int) -> bool:
        """Whether message ``source_id`` was deleted lately (a reply about it must not be shown)."""
        return source_id in self._gone
