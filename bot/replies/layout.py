"""What a live reply's messages show at each moment: a pure function of its text and settings.

:class:`Layout` turns the text received so far into a :class:`Target` (the content of each message,
the buttons on the last, an optional attached file): the placeholder (or "Thinking... 12s"), the
unfinished text, the final text with its note, or the text with an error line. The reply
(:class:`~bot.replies.live.LiveReply`) then brings its messages to the target, one paced request at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from bot.replies.controls import Buttons
from bot.replies.textsplit import DISCORD_LIMIT, Wrap, close_at, escape, render_live, render_preview

WARNING = "⚠️"
PREVIEW_CHARS = 1500
THINKING = "Thinking..."
CONTINUED_BELOW = "-# Continued below."


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

    def partial(self, text: str, line: str | None, buttons: Buttons = (), *, whole: str | None = None) -> Target:
        """The unfinished text (code blocks closed for display) with ``line`` at the end.
        ``whole``: the reply's whole text, when ``text`` is the part after sealed messages."""
        chunks = render_live(text, limit=self.limit, wrap=self.wrap)
        if self._overflows(chunks):
            line = line or so_far(whole or text)
            return Target(self._kept(text, chunks, line), buttons=buttons)
        return Target(self._with_line(chunks, line), buttons=buttons)

    def final(
        self, text: str, note: str | None, empty_text: str, buttons: Buttons = (), *, whole: str | None = None
    ) -> Target:
        """The whole text (or ``empty_text`` when blank) with the ``note`` under it. ``whole``: the
        reply's whole text (attached when it overflows), when ``text`` is the part after sealed messages."""
        if not text.strip():
            return Target(self._with_line([empty_text[: self.limit]], note), buttons=buttons)
        chunks = render_live(text, limit=self.limit, wrap=self.wrap, final=True)
        if self._overflows(chunks):
            attached = whole or text
            line = self._attached_line(attached, note)
            return Target(self._kept(text, chunks, line), file_text=attached, buttons=buttons)
        return Target(self._with_line(chunks, note), buttons=buttons)

    def seal(self, text: str, shown: int, *, complete: bool = False) -> SealedLayout:
        """This layout once the first ``shown`` messages can no longer be edited (an interaction's
        token is about to end): they are made final where they stand (see :class:`SealedLayout`),
        and the returned layout lays out the rest of the text after them. ``complete``: the text is
        all there (an unfinished one is sealed at its last line break)."""
        chunks = render_live(text, limit=self.limit, wrap=self.wrap)
        if shown and not text.strip():  # a placeholder: it points to where the text will be
            return SealedLayout(self, (CONTINUED_BELOW,), 0)
        if shown >= max(self.max_messages, 1) and self._overflows(chunks):  # a preview: the file follows
            return SealedLayout(self, tuple(self._kept(text, chunks, CONTINUED_BELOW)), len(text), preview=True)
        closed = close_at(text, shown, limit=self.limit, wrap=self.wrap, complete=complete)
        return SealedLayout(self, tuple(closed.contents), closed.end, closed.reopen)

    def _attached_line(self, text: str, note: str | None) -> str:
        line = f"The full text ({len(text):,} characters) is attached as {self.attachment_name}."
        return f"{line}\n{note}" if note else line

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


def so_far(text: str) -> str:
    return f"… {len(text):,} characters so far"


@dataclass(frozen=True)
class SealedLayout:
    """A layout whose first messages are final (:meth:`Layout.seal`): whatever the text, they keep
    ``sealed``; the text after them (from offset ``end`` of the escaped text, behind ``reopen``) is
    laid out in new messages by the original layout, with the messages the sealed ones left it.
    ``preview``: the sealed messages end in an overflowing text's preview; the new message then only
    counts the characters, and finally carries the whole text as the attachment.

    The sealed messages carry no buttons: with no text after them, the reply's last buttons are dropped.
    """

    original: Layout
    sealed: tuple[str, ...]
    end: int
    reopen: str = ""
    preview: bool = False

    @property
    def attachment_name(self) -> str:
        return self.original.attachment_name

    @property
    def rest_layout(self) -> Layout:
        return replace(self.original, max_messages=max(self.original.max_messages - len(self.sealed), 1))

    def rest(self, text: str) -> str:
        """The text after the sealed messages ("" if there is none yet)."""
        after = escape(text, self.original.wrap)[self.end :]
        return self.reopen + after if after.strip() else ""

    def seal(self, text: str, shown: int, *, complete: bool = False) -> SealedLayout:
        return self  # sealed once: the messages after these are not a token's

    def waiting(self, thinking_seconds: float | None, buttons: Buttons = ()) -> Target:
        waiting = self.original.waiting(thinking_seconds, buttons)
        return Target([*self.sealed, *waiting.contents], buttons=buttons, has_text=False)

    def partial(self, text: str, line: str | None, buttons: Buttons = ()) -> Target:
        rest = self.rest(text)
        if self.preview or not rest:
            return self._after([line or so_far(text)] if self.preview else [line] if line else [], buttons)
        return self._after(self.rest_layout.partial(rest, line, buttons, whole=text))

    def final(self, text: str, note: str | None, empty_text: str, buttons: Buttons = ()) -> Target:
        if self.preview:
            return self._after([self.original._attached_line(text, note)], buttons, file_text=text)
        rest = self.rest(text)
        if not rest:
            if not self.sealed:
                return self.original.final(text, note, empty_text, buttons)
            return self._after([note] if note else [], buttons)
        return self._after(self.rest_layout.final(rest, note, empty_text, buttons, whole=text))

    def error(self, text: str, reason: str) -> Target:
        return self.partial(text, f"{WARNING} {reason}")

    def with_line(self, contents: list[str], line: str, buttons: Buttons = ()) -> Target:
        after = contents[len(self.sealed) :]
        if not after:
            return self._after([line], buttons)
        return self._after(self.original.with_line(after, line, buttons))

    def _after(self, rest: Target | list[str], buttons: Buttons = (), file_text: str | None = None) -> Target:
        """The sealed messages, then ``rest`` (a target, or its contents with these buttons and file)."""
        if isinstance(rest, Target):
            rest, buttons, file_text = rest.contents, rest.buttons, rest.file_text
        return Target([*self.sealed, *rest], file_text=file_text, buttons=buttons if rest else ())
