"""Answers people can steer: what the Stop, Regenerate and Continue buttons carry, and who may click them.

Pure: plain strings and numbers. A button's custom ID holds all a click needs (the kind of answer, the
question's id, the asker's id), never a secret, so a click works after a restart: the rest (the
question, its images, the answer) is read from the store. Everything a click acts on is re-checked
when it comes: the clicker (the asker, or a moderator: Manage Messages in that channel), the answer's
age (``REGENERATE_MINUTES``) and that no newer answer exists in the channel's conversation.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

STOP = "Stop"
REGENERATE = "Regenerate"
CONTINUE = "Continue"

STOP_ID_TEMPLATE = r"glimpse:stop:(?P<asker>[0-9]{1,20})"
ANSWER_ID_TEMPLATE = r"glimpse:(?P<action>regen|more):(?P<kind>[cpa]):(?P<question>[0-9]{1,20}):(?P<asker>[0-9]{1,20})"

DISCORD_EPOCH_MS = 1_420_070_400_000

ONLY_ASKER = "Only the person who asked, or a moderator, can do that."
NOT_STREAMING = "This answer is not being written any more."
EXPIRED = "This answer is too old to regenerate or continue."
NOT_NEWEST = "A newer answer came since: only the newest answer in a channel can be regenerated or continued."
FORGOTTEN = "I no longer remember this answer, so I cannot regenerate or continue it."
BUSY = "This answer is being written right now."


class AnswerKind(enum.StrEnum):
    """How an answer was asked for, which decides how it is asked for again."""

    CHAT = "c"  # a conversation: mention, reply, DM or /ask
    DESCRIBE = "p"  # /describe with a prompt (kept as the question's text)
    ALT_TEXT = "a"  # a description without a prompt (alt text)


class Steer(enum.StrEnum):
    REGENERATE = "regen"
    CONTINUE = "more"


@dataclass(frozen=True, slots=True)
class AnswerRef:
    """An answer a Regenerate or Continue button acts on."""

    kind: AnswerKind
    question_id: int
    asker_id: int

    def custom_id(self, action: Steer) -> str:
        return f"glimpse:{action}:{self.kind}:{self.question_id}:{self.asker_id}"


def parse_answer_id(custom_id: str) -> tuple[Steer, AnswerRef] | None:
    match = re.fullmatch(ANSWER_ID_TEMPLATE, custom_id)
    if match is None:
        return None
    ref = AnswerRef(AnswerKind(match["kind"]), int(match["question"]), int(match["asker"]))
    return Steer(match["action"]), ref


def stop_id(asker_id: int) -> str:
    return f"glimpse:stop:{asker_id}"


def parse_stop_id(custom_id: str) -> int | None:
    """The asker's id carried by a Stop button."""
    match = re.fullmatch(STOP_ID_TEMPLATE, custom_id)
    return int(match["asker"]) if match else None


def may_steer(clicker_id: int, asker_id: int, *, moderator: bool) -> bool:
    """The asker may steer their answer; so may anyone who may manage messages in that channel."""
    return clicker_id == asker_id or moderator


def snowflake_seconds(snowflake: int) -> float:
    """Unix time at which Discord made ``snowflake``."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


def expired(question_id: int, *, minutes: float, now: float) -> bool:
    """Whether the answer to ``question_id`` is older than the buttons live (``REGENERATE_MINUTES``)."""
    return now - snowflake_seconds(question_id) > minutes * 60
