"""OCR core, engine-neutral: the transcription prompt, cleaning, joining tiles, streaming tiled answers.

Nothing here imports discord. The ``/ocr`` cog picks an engine and wires these pieces:

* ``engine: model`` — the images of one attachment as ``bot.images.prepare.prepare_text_images`` returns them
  (one image, or ordered overlapping tiles of a tall image) go one per request through
  :func:`build_ocr_messages`; :class:`TiledTranscript` turns the per-tile answers into one
  append-only stream of text (seams de-duplicated with :func:`join_tiles`) for a live reply.
* ``engine: local`` — an :class:`OcrEngine` (``bot.ocr.local.LocalOcrEngine``), run in the image
  worker pool because it is synchronous and CPU-bound.

Either way the answer ends as an :class:`OcrResult`; an empty ``text`` means no readable text.
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from PIL import Image

from bot.prompts import (
    OCR_LANGUAGE,
    OCR_MARKDOWN,
    OCR_PLAIN,
    OCR_REQUEST,
    OCR_SYSTEM,
    OCR_TILE,
)

log = logging.getLogger(__name__)

Layout = Literal["plain", "markdown"]
EngineName = Literal["model", "local"]

NO_TEXT_MESSAGE = "No readable text found."


class OcrError(Exception):
    """An engine could not transcribe an image (not installed, timed out, unreadable file)."""


@dataclass(frozen=True)
class OcrResult:
    """One transcription. ``text`` is empty when there is no readable text; ``note`` is for the reader
    (e.g. which engine answered after a fallback)."""

    text: str
    engine: EngineName
    note: str | None = None


class ImagePart(Protocol):
    """What the prompt needs from an image: ``bot.images.prepare.PreparedImage`` has it."""

    def content_part(self) -> dict[str, Any]: ...


class OcrEngine(Protocol):
    """A synchronous, CPU-bound engine; run ``transcribe`` off the event loop."""

    name: EngineName

    def available(self) -> bool: ...

    @property
    def why_unavailable(self) -> str: ...

    def transcribe(self, image: bytes | Image.Image) -> str: ...


# --- the prompt -------------------------------------------------------------------------------------


def build_ocr_messages(
    images: Sequence[ImagePart],
    *,
    language: str | None = None,
    layout: Layout = "plain",
    part: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Chat messages asking for a verbatim transcription of ``images``.

    ``part=(k, n)`` (1-based) says the image is tile k of n of a tall image. ``language`` is a hint
    for reading, never a translation request. Send with temperature 0: the caller sets it.
    """
    if not images:
        raise ValueError("build_ocr_messages needs at least one image")
    if layout not in ("plain", "markdown"):
        raise ValueError(f"unknown layout {layout!r}")
    if part is not None and not 1 <= part[0] <= part[1]:
        raise ValueError(f"part {part} is not 1 <= k <= n")
    request = [OCR_REQUEST]
    if language and language.strip():
        request.append(OCR_LANGUAGE.format(language=_one_line(language)[:60]))
    if part is not None:
        request.append(OCR_TILE.format(index=part[0], count=part[1]))
    system = f"{OCR_SYSTEM} {OCR_MARKDOWN if layout == 'markdown' else OCR_PLAIN}"
    content = [image.content_part() for image in images]
    content.append({"type": "text", "text": " ".join(request)})
    return [{"role": "system", "content": system}, {"role": "user", "content": content}]


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- cleaning an answer -----------------------------------------------------------------------------

_WRAP = r"[\s`'\"*_.!\[\](){}<>-]*"
_NO_TEXT_RE = re.compile(rf"{_WRAP}no[\s_-]*(?:readable[\s_-]*)?text{_WRAP}", re.I)
_FENCE_OPEN_RE = re.compile(r"\A[ \t]*(```|~~~)[\w+-]*[ \t]*\n")
_FENCE_CLOSE_RE = re.compile(r"\n[ \t]*(```|~~~)[ \t]*\Z")


def is_no_text(answer: str) -> bool:
    """Whether an answer means "no readable text": empty, or the sentinel give or take quotes,
    backticks, brackets, case, a space instead of the underscore, or a full stop."""
    return not answer.strip() or _NO_TEXT_RE.fullmatch(answer) is not None


def clean_transcription(answer: str) -> str:
    """The transcription without what the model may add around it: an enclosing code fence, trailing
    spaces, blank lines at the ends, the no-text sentinel (which becomes "")."""
    text = answer.replace("\r\n", "\n").replace("\r", "\n")
    opened = _FENCE_OPEN_RE.match(text)
    if opened:
        text = text[opened.end():]
        text = _FENCE_CLOSE_RE.sub("", text.rstrip())
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    return "" if is_no_text(text) else text


# --- joining overlapping tiles ----------------------------------------------------------------------

SEAM_LINES = 15
"""How many non-blank lines on each side of a seam are compared (the overlap is ~10% of a tile)."""

_SAME = 0.8  # line similarity at which two lines are the same line read twice
_CLOSE = 0.6  # below this, lines inside an overlap disagree: not a real overlap
_PARTIAL = 0.3  # a cut line resembles its full reading at least this much


def _norm(line: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", line).casefold().split())


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _weight(line: str) -> float:
    """Evidence a matching line gives: a rule such as "----" or "ok" matches too easily to count fully."""
    return 1.0 if sum(char.isalnum() for char in line) >= 4 else 0.25


def _is_junk(line: str) -> bool:
    """What OCR makes of a line cut through the middle: almost no letters or digits."""
    alnum = sum(char.isalnum() for char in line)
    return alnum <= 2 or alnum < 0.4 * len(line.replace(" ", ""))


@dataclass(frozen=True)
class _Seam:
    """Where to switch tiles: indices into the tail and head windows of lines both tiles read well."""

    cut: tuple[int, int]  # the middle such line: the upper tile's reading up to here, the lower's after
    last: tuple[int, int]  # the last such line
    score: float


def _find_seam(tail: list[str], head: list[str]) -> _Seam | None:
    """The best alignment of the end of ``tail`` with the start of ``head`` (normalized lines).

    Head line h faces tail line h + shift. An overlap reaches the last or second-to-last tail line
    (the last may be cut by the tile's bottom edge) and starts at the first or second head line (the
    first may be cut by the next tile's top edge); inside it, lines must agree.
    """
    best: _Seam | None = None
    for shift in range(-1, len(tail)):
        pairs = [(h + shift, h) for h in range(max(0, -shift), min(len(head), len(tail) - shift))]
        if not pairs or pairs[-1][0] < len(tail) - 2:
            continue
        score = 0.0
        same: list[tuple[int, int]] = []
        for t, h in pairs:
            ratio = _similarity(tail[t], head[h])
            if ratio >= _SAME:
                score += _weight(tail[t])
                same.append((t, h))
            elif ratio < _CLOSE and t != len(tail) - 1 and h != 0:
                break  # a line inside the overlap disagrees: not an overlap
        else:
            # Shifts grow as overlaps shrink; ties go to the smaller overlap, which removes less.
            if score >= 1.0 and (best is None or score >= best.score):
                best = _Seam(same[(len(same) - 1) // 2], same[-1], score)
    return best


def _non_blank(lines: list[str]) -> list[int]:
    return [index for index, line in enumerate(lines) if line.strip()]


def _join_two(previous: list[str], following: list[str]) -> list[str]:
    """``previous + following`` without the lines ``following`` repeats at its top.

    In the overlap, lines nearer the upper tile's bottom edge are taken from the lower tile, where
    they are further from an edge, and the other way round.
    """
    tail_at = _non_blank(previous)[-SEAM_LINES:]
    head_at = _non_blank(following)[:SEAM_LINES]
    tail = [_norm(previous[i]) for i in tail_at]
    head = [_norm(following[i]) for i in head_at]
    seam = _find_seam(tail, head)
    if seam is None:
        return previous + following
    after = head_at[seam.last[1]] + 1
    joined = previous[: tail_at[seam.cut[0]] + 1] + following[head_at[seam.cut[1]] + 1 : after]
    # Tail lines after the last good match were read near the bottom edge: drop a cut line whose full
    # reading comes next in the following tile, keep anything else rather than lose it.
    upcoming = [_norm(line) for line in following[after:] if line.strip()]
    for offset, t in enumerate(range(seam.last[0] + 1, len(tail))):
        replaced = offset < len(upcoming) and _similarity(tail[t], upcoming[offset]) >= _PARTIAL
        if not (replaced or _is_junk(tail[t])):
            joined.append(previous[tail_at[t]])
    return joined + following[after:]


def join_tiles(texts: Sequence[str]) -> str:
    """Join the transcriptions of ordered, overlapping tiles, dropping the lines read twice at seams.

    Lines are compared fuzzily (case, spacing, OCR noise) and only near a seam, so lines that repeat
    legitimately elsewhere (rules, "ok") stay. When in doubt a line is kept: a duplicated line costs
    less than a lost one.
    """
    joined: list[str] = []
    for text in texts:
        lines = text.split("\n") if text.strip() else []
        if not lines:
            continue
        joined = _join_two(joined, lines) if joined else lines
    return "\n".join(joined).strip("\n")


# --- streaming a tiled transcription ----------------------------------------------------------------

OcrStreamFactory = Callable[[list[dict[str, Any]]], AsyncIterator[str]]
"""Starts one model request for the given messages (at temperature 0) and yields its text deltas,
e.g. ``lambda messages: vision.stream(messages, temperature=0)``."""


class TiledTranscript:
    """Per-tile answers in, the joined transcription out as an append-only text.

    Text is released only once no later seam can change it: the last :data:`SEAM_LINES` lines stay
    held back until the next tile's first lines have arrived (or it was the last tile), so what was
    shown is always a prefix of the final :func:`join_tiles` result.
    """

    def __init__(self) -> None:
        self._joined: list[str] = []  # finished tiles, joined
        self._current = ""
        self._complete = ""  # the current tile's text up to its last newline
        self._released = ""

    def feed(self, delta: str, *, last: bool = False) -> str:
        """Add model text of the current tile; return the text newly safe to show (may be "").

        ``last``: no tile follows this one. If no earlier tile had text either (a single image), no
        seam can change what is read, so every complete line is released at once.
        """
        self._current += delta
        complete = self._current[: self._current.rfind("\n") + 1]
        if complete == self._complete:
            return ""
        self._complete = complete
        hold = 0 if last and not self._joined else SEAM_LINES
        return self._release(self._with_current(clean_transcription(complete)), final=False, hold=hold)

    def end_tile(self) -> None:
        tile = clean_transcription(self._current)
        if tile:
            self._joined = _join_two(self._joined, tile.split("\n")) if self._joined else tile.split("\n")
        self._current = self._complete = ""

    def finish(self) -> str:
        """After the last tile: return the rest of the text."""
        if self._current:
            self.end_tile()
        return self._release(self._joined, final=True)

    @property
    def text(self) -> str:
        """The whole transcription of the finished tiles; "" means no readable text."""
        return "\n".join(self._joined).strip("\n")

    def _with_current(self, current: str) -> list[str]:
        lines = current.split("\n") if current else []
        if not self._joined:
            return lines
        # The seam with the current tile is settled once its head window is full.
        if len(_non_blank(lines)) <= SEAM_LINES:
            return self._joined
        return _join_two(self._joined, lines)

    def _release(self, lines: list[str], *, final: bool, hold: int = SEAM_LINES) -> str:
        stable = "\n".join(lines).strip("\n")
        if not final and hold:
            stable = _held_back(stable, hold)
        if not stable.startswith(self._released):
            if not final:
                return ""  # wait for the end: then the rest is shown
            # What was shown cannot be taken back: show the final text from the first line where it
            # differs. A line shown twice costs less than a line lost.
            log.warning("OCR stream: joined text diverged from what was shown; showing the rest as is")
            shown = self._released.rstrip("\n").split("\n")
            final_lines = stable.split("\n")
            same = 0
            while same < min(len(shown), len(final_lines)) and shown[same] == final_lines[same]:
                same += 1
            separator = "" if self._released.endswith("\n") else "\n"
            rest, self._released = "\n".join(final_lines[same:]), stable
            return separator + rest if rest else ""
        delta, self._released = stable[len(self._released) :], stable
        return delta


def _held_back(text: str, count: int) -> str:
    """``text`` up to (and with the newline before) its last ``count`` non-blank lines."""
    lines = text.split("\n")
    at = _non_blank(lines)
    if len(at) <= count:
        return ""
    return "\n".join(lines[: at[-count]]) + "\n"


async def stream_transcription(
    start: OcrStreamFactory,
    images: Sequence[ImagePart],
    *,
    language: str | None = None,
    layout: Layout = "plain",
    transcript: TiledTranscript | None = None,
) -> AsyncIterator[str]:
    """Transcribe one picture (one image, or its ordered tiles) with the model, one request per tile,
    yielding deltas of the joined, cleaned text. Afterwards ``transcript.text`` is the whole text
    (pass your own ``transcript`` to read it); "" means no readable text."""
    transcript = transcript if transcript is not None else TiledTranscript()
    count = len(images)
    for index, image in enumerate(images, start=1):
        part = (index, count) if count > 1 else None
        messages = build_ocr_messages([image], language=language, layout=layout, part=part)
        async for delta in start(messages):
            released = transcript.feed(delta, last=index == count)
            if released:
                yield released
        transcript.end_tile()
    rest = transcript.finish()
    if rest:
        yield rest
