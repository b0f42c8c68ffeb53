"""A reasoning model's thinking, kept out of the answer.

Providers send a reasoning model's thinking in one of two ways: as ``reasoning_content`` deltas beside
``content`` (DeepSeek, Qwen, vLLM's reasoning parsers), or inline, as ``<think>...</think>`` at the
start of the content (models served without a parser). The first is dropped by the client where it
reads the delta; the second by :class:`ThinkFilter`, which sees the content as it streams and lets
through only what follows the closing tag. The thinking is never kept: not shown, not stored, not logged.
"""

from __future__ import annotations

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


class ThinkFilter:
    """Streams content with a leading ``<think>...</think>`` block removed (and the blank lines after it).

    :meth:`feed` returns the visible part of each delta (possibly empty); :attr:`thinking` tells whether
    the model is inside its thinking now. Text that does not start with the tag passes unchanged,
    held back only while it could still be the start of the tag (at most six characters).
    """

    def __init__(self) -> None:
        self._state = "start"  # start -> inside -> after -> visible; or start -> visible
        self._held = ""
        self.thinking = False

    def feed(self, delta: str) -> str:
        if self._state == "visible":
            return delta
        self._held += delta
        if self._state == "start":
            head = self._held.lstrip()
            if head.startswith(OPEN_TAG):
                self._state, self._held, self.thinking = "inside", head[len(OPEN_TAG) :], True
            elif OPEN_TAG.startswith(head):
                return ""  # blank so far, or a prefix of the tag: not decided yet
            else:
                return self._show(self._held)
        if self._state == "inside":
            end = self._held.find(CLOSE_TAG)
            if end < 0:
                # Keep only what could hold the start of the closing tag; the thinking itself goes.
                self._held = self._held[-(len(CLOSE_TAG) - 1) :]
                return ""
            self._state, self._held, self.thinking = "after", self._held[end + len(CLOSE_TAG) :], False
        rest = self._held.lstrip()
        if not rest:
            return ""
        return self._show(rest)

    def flush(self) -> str:
        """At the end of the stream: what is still held and visible (a tag prefix that never completed)."""
        if self._state == "start" and self._held.strip():
            return self._show(self._held)
        return ""

    def _show(self, text: str) -> str:
        self._state, self._held = "visible", ""
        return text
