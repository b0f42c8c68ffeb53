"""Pure text logic for live replies: a growing text rendered as Discord-sized messages.

Rules (Discord's markdown, as its client parses it):

* A code block runs from one `` ``` `` to the next; an optional language tag follows the opening
  fence directly and ends at the first newline (``[a-z0-9_+-.#]``). Every other `` ``` `` toggles.
* A chunk that ends inside a code block is closed at its end (`` ``` ``) and the block is reopened,
  with the same language tag, at the start of the next chunk, so each message renders on its own.
* Lengths are counted in code points (``len``), which is how Discord's API counts them.

Escapes (only under a :class:`Wrap`, where the text must not break out of its frame): a zero-width
space (U+200B) is inserted between backticks (:attr:`Wrap.CODE`: no run of three remains, so the text
cannot close the block; Discord only knows three-backtick fences, so a longer fence is no option) or
between pipes (:attr:`Wrap.SPOILER`: no ``||`` remains, so the text cannot end the spoiler early).
U+200B is invisible in Discord, also inside code blocks; it does end up in text copied from the
message, which is why long texts are attached as a file as well (see ``bot/replies/live.py``).
"""

from __future__ import annotations

import bisect
import enum
import re
from dataclasses import dataclass

DISCORD_LIMIT = 2000
FENCE = "```"
ZWSP = "\u200b"

_MIN_LIMIT = 40
_MAX_LANG = 16
_LANG = re.compile(r"([a-z0-9_+\-.#]+)\n", re.IGNORECASE)
_CLOSE_RESERVE = len("\n" + FENCE)
# Boundary patterns; a chunk ends right after a match (separators stay with the earlier chunk).
_PARAGRAPH = re.compile(r"\n{2,}")
_LINE = re.compile(r"\n+")
_SENTENCE = re.compile(r"[.!?…。！？][\"')\]»”’]*[ \t]+")
_WORD = re.compile(r"[ \t]+")
_BACKTICK_RUN = re.compile(r"``(?=`)")
_PIPE_RUN = re.compile(r"\|(?=\|)")


class Wrap(enum.Enum):
    """A frame drawn around every chunk."""

    SPOILER = "spoiler"  # ||chunk||: hidden until clicked (SPOILER_ images)
    CODE = "code"  # ```\nchunk\n```: verbatim text (OCR), balanced in every chunk


_WRAP_OVERHEAD = {
    None: 0,
    Wrap.SPOILER: len("||||") + 1,  # +1: a zero-width space after a chunk that ends in "|"
    Wrap.CODE: len("```\n\n```"),
}


@dataclass(frozen=True)
class Piece:
    """One chunk of a text: ``reopen + text[start:end] + close``."""

    start: int
    end: int
    reopen: str = ""
    close: str = ""

    def render(self, text: str) -> str:
        return self.reopen + text[self.start : self.end] + self.close


class _Fences:
    """Where the code blocks of one text open and close."""

    def __init__(self, text: str) -> None:
        self.ends: list[int] = []  # end offset of every fence, in order
        self.langs: list[str] = []  # language tag of each fence (meaningful for opening ones)
        for match in re.finditer(re.escape(FENCE), text):
            self.ends.append(match.end())
            tag = _LANG.match(text, match.end())
            lang = tag.group(1) if tag and len(tag.group(1)) <= _MAX_LANG else ""
            self.langs.append(lang)

    def open_at(self, pos: int) -> str | None:
        """The language tag ("" for none) of the code block open at ``pos``, or None outside one."""
        count = bisect.bisect_right(self.ends, pos)
        return self.langs[count - 1] if count % 2 else None


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` characters.

    Splits at paragraph, then line, then sentence, then word boundaries (a hard cut only inside a
    single unbroken run), preferring boundaries outside code blocks; a code block cut by a split is
    closed and reopened. Removing the added fence markers and joining the chunks gives ``text``.
    """
    return [piece.render(text) for piece in pieces(text, limit)]


def pieces(text: str, limit: int = DISCORD_LIMIT) -> list[Piece]:
    """The chunks of :func:`split_message` as spans of ``text`` plus the fence markers they add."""
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit must be at least {_MIN_LIMIT}")
    fences = _Fences(text)
    result: list[Piece] = []
    start, reopen = 0, ""
    while True:
        if len(reopen) + len(text) - start <= limit:
            result.append(Piece(start, len(text), reopen))
            return result
        end = _split_point(text, start, limit - len(reopen) - _CLOSE_RESERVE, fences)
        lang = fences.open_at(end)
        if lang is None:
            result.append(Piece(start, end, reopen))
            reopen = ""
        else:
            close = FENCE if text[end - 1] == "\n" else "\n" + FENCE
            result.append(Piece(start, end, reopen, close))
            reopen = f"{FENCE}{lang}\n"
        start = end


def _split_point(text: str, start: int, budget: int, fences: _Fences) -> int:
    """The end of the next chunk: the best boundary in ``text[start:start + budget]``."""
    window_end = start + budget
    min_end = start + budget // 2
    found: dict[re.Pattern[str], list[int]] = {}
    for pattern in (_PARAGRAPH, _LINE, _SENTENCE, _WORD):
        found[pattern] = [m.end() for m in pattern.finditer(text, start, window_end) if m.end() > start]

    def best(pattern: re.Pattern[str], inside: bool | None) -> int | None:
        for end in reversed(found[pattern]):
            if end < min_end:
                return None
            if inside is None or (fences.open_at(end) is not None) == inside:
                return end
        return None

    preferences: list[tuple[re.Pattern[str], bool | None]] = [
        (_PARAGRAPH, False),
        (_LINE, False),
        (_PARAGRAPH, True),
        (_LINE, True),
        (_SENTENCE, None),
        (_WORD, None),
    ]
    for pattern, inside in preferences:
        end = best(pattern, inside)
        if end is not None:
            return end
    anywhere = [ends[-1] for ends in found.values() if ends]
    if anywhere:
        return max(anywhere)
    return _hard_cut(text, start, window_end)


def _hard_cut(text: str, start: int, end: int) -> int:
    """Cut an unbroken run at ``end``, but never through a fence.

    Fences are read left to right in threes, so a run of backticks may only be cut a multiple of
    three backticks after its first one: both halves then hold exactly the fences the run held.
    """
    if text[end - 1] != "`" or text[end] != "`":
        return end
    run_start = end - 1
    while run_start > 0 and text[run_start - 1] == "`":
        run_start -= 1
    cut = run_start + (end - run_start) // len(FENCE) * len(FENCE)
    return cut if cut > start else end


def escape(text: str, wrap: Wrap | None) -> str:
    """Make ``text`` unable to break out of ``wrap`` (see the module docstring)."""
    if wrap is Wrap.CODE:
        return _BACKTICK_RUN.sub("``" + ZWSP, text)
    if wrap is Wrap.SPOILER:
        return _PIPE_RUN.sub("|" + ZWSP, text)
    return text


def _frame(content: str, wrap: Wrap | None) -> str:
    if wrap is Wrap.CODE:
        return f"```\n{content}\n```"
    if wrap is Wrap.SPOILER:
        tail = ZWSP if content.endswith("|") else ""
        return f"||{content}{tail}||"
    return content


def render_live(
    text: str, *, limit: int = DISCORD_LIMIT, wrap: Wrap | None = None, final: bool = False
) -> list[str]:
    """Render a (possibly still growing) text as the contents of its messages.

    The split is the one of :func:`split_message`, so earlier chunks stay put as the text grows and
    the number of chunks never shrinks. With ``final=False`` a code block left open at the end is
    closed for display (the last few characters may be held back to make room for the fence).
    With ``final=True`` and no wrap the result is exactly ``split_message(text, limit)``.
    """
    inner = limit - _WRAP_OVERHEAD[wrap]
    body = escape(text, wrap)
    spans = pieces(body, inner)
    chunks = [piece.render(body) for piece in spans]
    if not final:
        chunks[-1] = _balanced_tail(body, spans[-1], inner)
    return [_frame(chunk, wrap) for chunk in chunks]


def _balanced_tail(text: str, piece: Piece, limit: int) -> str:
    """The last chunk of an unfinished text with its open code block (if any) closed."""
    chunk = piece.render(text)
    while _Fences(chunk).open_at(len(chunk)) is not None:
        close = FENCE if chunk.endswith("\n") else "\n" + FENCE
        if len(chunk) + len(close) <= limit:
            return chunk + close
        chunk = chunk[: limit - len(close)]  # hold back the newest characters; re-check the fences
    return chunk


def render_preview(
    text: str, *, chars: int, wrap: Wrap | None = None, after: int = 0, limit: int = DISCORD_LIMIT
) -> str:
    """The first ``chars`` characters or fewer of ``text``, cut at a boundary, balanced and wrapped;
    with ``after``, of what follows the first ``after`` messages of :func:`render_live` (at ``limit``)."""
    body = escape(text, wrap)
    if after:
        following = pieces(body, limit - _WRAP_OVERHEAD[wrap])[after]
        body = following.reopen + body[following.start :]
    inner = chars - _WRAP_OVERHEAD[wrap]
    first = pieces(body, inner)[0]
    return _frame(_balanced_tail(body, first, inner), wrap)


@dataclass(frozen=True)
class Closed:
    """The first messages of a growing text, made final where they stand (see :func:`close_at`)."""

    contents: list[str]
    end: int
    """Where they stop, as an offset in ``escape(text, wrap)``: what follows goes elsewhere."""
    reopen: str = ""
    """The fence that reopens, for what follows, a code block left open at ``end`` ("" for none)."""


def close_at(
    text: str, messages: int, *, limit: int = DISCORD_LIMIT, wrap: Wrap | None = None, complete: bool = False
) -> Closed:
    """The first ``messages`` messages of :func:`render_live` (at most as many as there are chunks),
    made final: no character in them is held back, and nothing is ever added to them again.

    Messages the text has outgrown end where their chunks end. The last chunk, still growing, ends
    at its last line break (so a line is not cut in two; the break is the boundary between the
    messages), or where the text ends if it has none or is ``complete``, with any open code block
    closed. What follows is the text from ``end`` on, behind ``reopen``.
    """
    inner = limit - _WRAP_OVERHEAD[wrap]
    body = escape(text, wrap)
    spans = pieces(body, inner)
    count = max(0, min(messages, len(spans)))
    if count == 0:
        return Closed([], 0)
    if count < len(spans):
        done = spans[:count]
        return Closed([_frame(p.render(body), wrap) for p in done], done[-1].end, spans[count].reopen)
    last = spans[-1]
    fences = _Fences(body)
    end = cut = len(body)  # the message holds body[last.start:cut]; what follows starts at end
    line_break = body.rfind("\n", last.start)
    if not complete and body[last.start : line_break].strip():
        end, cut = line_break + 1, line_break  # the break itself is the message boundary
    while True:
        lang = fences.open_at(end)
        close = "" if lang is None else FENCE if body[cut - 1] == "\n" else "\n" + FENCE
        if len(last.reopen) + cut - last.start + len(close) <= inner or cut <= last.start + 1:
            break
        end = cut = _hard_cut(body, last.start, last.start + inner - len(last.reopen) - _CLOSE_RESERVE)
    tail = Piece(last.start, cut, last.reopen, close).render(body)
    chunks = [*(p.render(body) for p in spans[:-1]), tail]
    reopen = "" if lang is None else f"{FENCE}{lang}\n"
    return Closed([_frame(c, wrap) for c in chunks], end, reopen)
