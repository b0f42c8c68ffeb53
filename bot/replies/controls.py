"""The buttons a live reply carries: Stop while it streams, then whatever its caller offers (pure data).

A reply's buttons sit on its last message. They are part of what a message shows, like its text, so
they change on the same paced edits as the text: a button comes or goes on an edit that happens
anyway whenever there is one (see :class:`~bot.replies.live.LiveReply`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ButtonStyle = Literal["primary", "secondary", "success", "danger"]


@dataclass(frozen=True, slots=True)
class Button:
    """One button: its label, and the custom ID its click is dispatched by (never a secret)."""

    label: str
    custom_id: str
    style: ButtonStyle = "secondary"


Buttons = tuple[Button, ...]
