"""Helpers for the tests of the buttons under answers (Stop, Regenerate, Continue)."""

from __future__ import annotations

from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.discord.state import Revision


def buttons(components: list[dict[str, object]]) -> dict[str, str]:
    """Label -> custom ID of every button in ``components`` (a message's, or one revision's)."""
    return {
        str(button["label"]): str(button["custom_id"])
        for row in components
        for button in row.get("components", [])  # type: ignore[attr-defined]
    }


def button_only_edits(message: Message) -> list[Revision]:
    """The edits of ``message`` that changed its buttons and nothing else."""
    return [
        after
        for before, after in zip(message.revisions, message.revisions[1:], strict=False)
        if after.content == before.content and after.components != before.components
    ]


def mention(emulator: DiscordEmulator, text: str) -> str:
    return f"<@{emulator.bot_user.id}> {text}"
