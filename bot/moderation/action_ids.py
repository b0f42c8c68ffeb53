"""Custom IDs for the mod-log buttons, so they keep working after a restart (persistent views).

Format: ``gmod1:<action>:<guild>:<channel>:<message>:<author>`` with canonical decimal
snowflakes; at most 97 characters (Discord allows 100). Decoding is strict: a string that would not
be produced by :func:`encode_action_id` for the same values is rejected.

The ID is not a credential (Discord only delivers IDs of components the bot itself sent, and the
cog still checks ``ref.guild_id`` against the interaction's guild and the clicker's own permissions
before doing anything); strictness just keeps malformed or foreign IDs out of the handler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "gmod1"  # "1": the format version
MAX_CUSTOM_ID_CHARS = 100
_MAX_SNOWFLAKE = (1 << 64) - 1


class ButtonAction(StrEnum):
    DELETE = "delete"
    TIMEOUT = "timeout"
    DISMISS = "dismiss"


_SNOWFLAKE = r"[1-9][0-9]{0,19}"
# For discord.ui.DynamicItem templates; named groups match ActionRef's fields.
ACTION_ID_PATTERN = (
    rf"{PREFIX}:(?P<action>{'|'.join(a.value for a in ButtonAction)})"
    rf":(?P<guild_id>{_SNOWFLAKE}):(?P<channel_id>{_SNOWFLAKE})"
    rf":(?P<message_id>{_SNOWFLAKE}):(?P<author_id>{_SNOWFLAKE})"
)
_ACTION_ID = re.compile(ACTION_ID_PATTERN, re.ASCII)


@dataclass(frozen=True)
class ActionRef:
    action: ButtonAction
    guild_id: int
    channel_id: int
    message_id: int
    author_id: int


def encode_action_id(
    action: ButtonAction | str, guild_id: int, channel_id: int, message_id: int, author_id: int
) -> str:
    action = ButtonAction(action)
    ids = (guild_id, channel_id, message_id, author_id)
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i <= _MAX_SNOWFLAKE for i in ids):
        raise ValueError("IDs must be Discord snowflakes")
    return ":".join([PREFIX, action.value, *map(str, ids)])


def decode_action_id(custom_id: str) -> ActionRef | None:
    """The reference encoded by :func:`encode_action_id`, or ``None`` for anything else."""
    if not isinstance(custom_id, str) or len(custom_id) > MAX_CUSTOM_ID_CHARS:
        return None
    match = _ACTION_ID.fullmatch(custom_id)
    if match is None:
        return None
    ids = [int(match[name]) for name in ("guild_id", "channel_id", "message_id", "author_id")]
    if any(i > _MAX_SNOWFLAKE for i in ids):
        return None
    return ActionRef(ButtonAction(match["action"]), *ids)
