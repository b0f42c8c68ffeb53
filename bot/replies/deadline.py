"""How long a reply started by an interaction may still use the interaction's token.

Discord lets a bot edit an interaction's response and send followups through the interaction's
token for 15 minutes from the moment the interaction was created; after that every such request is
refused (401, code 50027 "Invalid Webhook Token"). A reply that may outlive the token moves to
ordinary channel messages ``margin`` seconds before its end (see :class:`~bot.replies.live.LiveReply`),
so no request ever goes out with a token that has expired.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

TOKEN_LIFETIME = 15 * 60.0
"""Seconds an interaction token lives (Discord's rule: 15 minutes from the interaction's creation)."""
DEFAULT_MARGIN = 60.0
"""Seconds before the token's end at which a reply moves on: room for a busy channel's pacing and a
slow request, so the last request through the token is done well before it ends."""


@dataclass(frozen=True)
class TokenDeadline:
    """The life of one interaction token. ``created``: when Discord created the interaction, in the
    seconds of ``clock`` (the wall clock, as the interaction's snowflake tells it)."""

    created: float
    margin: float = DEFAULT_MARGIN
    lifetime: float = TOKEN_LIFETIME
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def handover_in(self) -> float:
        """Seconds until a reply should stop relying on the token (<= 0: now)."""
        return self.created + self.lifetime - self.margin - self.clock()

    def expired(self) -> bool:
        """Whether Discord would refuse the token now."""
        return self.clock() >= self.created + self.lifetime
