"""What a live reply's messages show at each moment: a pure function of its text and settings.

:class:`Layout` turns the text received so far into a :class:`Target` (the content of each message,
the buttons on the last, an optional attached file): the placeholder (or "Thinking... 12s"), the
unfinished text, the final text with its note, or the text with an error line. The reply
(:class:`~bot.replies.live.LiveReply`) then brings its messages to the target, one paced request at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.replies.controls import Buttons
from bot.replies.textsplit import DISCORD_LIMIT, Wrap, render_live, render_preview

WARNING = "⚠️"
PREVIEW_CHARS = 1500
THINKING = "Thinking..."


@dataclass(frozen=True)
class Target:
    """What the reply's messages should show; ``file_text`` is attached to the last one, and so are
    ``buttons``. ``has_text``: False for a placeholder."""

    contents: list[str]
    file_text: str | None = None
    buttons: Buttons = ()
    has_text: bool = True

    def buttons_of(self, index: int) -> Buttons:
        return self.buttons if index == len(self.contents) - 1 else ()


@dataclass(frozen=True)
class Layout:
    """How a reply lays out its text (see :class:`~bot.replies.live.LiveReply` for the options)."""

    wrap: Wrap | None = None
    overflow: Literal["continue", "attach"] = "continue"
    attachment_name: str = "text.txt"
    placeholder: str = "…"
    limit: int = DISCORD_LIMIT
    preview_chars: int = PREVIEW_CHARS
    max_messages: int = 1
    """With ``overflow="attach"``: the messages a text may take before the last of them becomes a
    preview of the rest with the whole text attached."""

    def waiting(self, thinking_seconds: float | None, buttons: Buttons = ()) -> Target:
        """The placeholder, or "Thinking... 12s" while a reasoning model thinks."""
        content = self.placeholder
        if thinking_seconds is not None:
            content = f"{THINKING} {max(0, round(thinking_seconds))}s"
        return Target([content], buttons=buttons, has_text=False)

    def partial(self, text: str, line: str | None, buttons: Buttons = ()) -> Target:
        """The unfinished text (code blocks closed for display) with ``line`` at the end."""
        chunks = render_live(text, limit=self.limit, wrap=self.wrap)
        if self._overflows(chunks):
            return Target(self._kept(text, chunks, line or f"… {len(text):,} characters so far"), buttons=buttons)
        return Target(self._with_line(chunks, line), buttons=buttons)

    def final(self, text: str, note: str | None, empty_text: str, buttons: Buttons = ()) -> Target:
        """The whole text (or ``empty_text`` when blank) with the ``note`` under it."""
        if not text.strip():
            return Target(self._with_line([empty_text[: self.limit]], note), buttons=buttons)
        chunks = render_live(text, limit=self.limit, wrap=self.wrap, final=True)
        if self._overflows(chunks):
            line = f"The full text ({len(text):,} characters) is attached as {self.attachment_name}."
            if note:
                line += "\n" + note
            return Target(self._kept(text, chunks, line), file_text=text, buttons=buttons)
        return Target(self._with_line(chunks, note), buttons=buttons)

    def error(self, text: str, reason: str) -> Target:
        """What was written, then ``⚠️ reason`` on a line of its own."""
        line = f"{WARNING} {reason}"
        if not text.strip():
            return Target([line])
        return self.partial(text, line)

    def with_line(self, contents: list[str], line: str, buttons: Buttons = ()) -> Target:
        """``contents`` as they are, with ``line`` added at the end."""
        return Target(self._with_line(contents, line), buttons=buttons)

    def _overflows(self, chunks: list[str]) -> bool:
        return self.overflow == "attach" and len(chunks) > max(self.max_messages, 1)

    def _kept(self, text: str, chunks: list[str], line: str) -> list[str]:
        """An overflowing text's messages: the first ones in full, the last a preview of the rest."""
        keep = max(self.max_messages, 1) - 1
        chars = min(self.preview_chars, self.limit)
        preview = render_preview(text, chars=chars, wrap=self.wrap, after=keep, limit=self.limit)
        return [*chunks[:keep], f"{preview}\n{line}"[: self.limit]]

    def _with_line(self, chunks: list[str], line: str | None) -> list[str]:
        """``chunks`` with ``line`` added at the end: on the last message if it fits, else its own."""
        if not line:
            return chunks
        if len(chunks[-1]) + 1 + len(line) <= self.limit:
            return [*chunks[:-1], f"{chunks[-1]}\n{line}"]
        return [*chunks, line[: self.limit]]
