"""Synthetic text images with their ground truth, and the character error rate to score OCR against it.

Shared by the OCR unit tests and ``bench/ocr.py``. Everything is deterministic for a given seed.
Fonts are DejaVu when installed (Debian: ``fonts-dejavu-core``); otherwise Pillow's bundled
scalable default font, so the generator works on any machine with FreeType.
"""

from __future__ import annotations

import io
import logging
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Literal

from PIL import Image, ImageDraw, ImageFilter, ImageFont

log = logging.getLogger(__name__)

Family = Literal["sans", "serif", "mono"]
FontType = ImageFont.FreeTypeFont | ImageFont.TransposedFont

_FONT_FILES: dict[tuple[Family, bool], str] = {
    ("sans", False): "DejaVuSans.ttf",
    ("sans", True): "DejaVuSans-Bold.ttf",
    ("serif", False): "DejaVuSerif.ttf",
    ("serif", True): "DejaVuSerif-Bold.ttf",
    ("mono", False): "DejaVuSansMono.ttf",
    ("mono", True): "DejaVuSansMono-Bold.ttf",
}

_WORD_TEXT = (
    "the quick brown fox jumps over lazy dog and then some people write long notes about their day "
    "meeting tomorrow at noon please bring the report we should check server logs before release "
    "version update fixed crash when opening settings thanks everyone for testing great work team "
    "coffee break after lunch remember to backup files deadline moved to friday morning weather is "
    "nice today invoice total price order number delivery address street city account password reset "
    "message channel voice video screen share photo camera window table chair garden market station "
    "library history science music movie ticket travel holiday summer winter family friend question "
    "answer simple example little small large number first second third minute hour week month year"
)
_WORDS = tuple(_WORD_TEXT.split())

_USERS = ("alice", "Bob_42", "carol.dev", "dmitri", "Evelyn", "frank_ops", "GraceH", "henrik")


@dataclass(frozen=True)
class TextImage:
    """An image and the text drawn on it, lines joined with newlines, in reading order."""

    name: str
    image: Image.Image
    text: str


@cache
def load_font(size: int, family: Family = "sans", *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu in the wanted style and size, or Pillow's scalable default font if DejaVu is missing."""
    try:
        # Pillow looks the bare file name up in the system font directories itself.
        return ImageFont.truetype(_FONT_FILES[(family, bold)], size)
    except OSError:
        log.info("DejaVu font not found; using Pillow's default font (install fonts-dejavu-core)")
        font = ImageFont.load_default(size=size)
        assert isinstance(font, ImageFont.FreeTypeFont), "Pillow was built without FreeType"
        return font


def sample_lines(count: int, *, seed: int, words: tuple[int, int] = (4, 9)) -> list[str]:
    """Sentence-like lines of common English words, with some capitals, digits and punctuation."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        chosen = [rng.choice(_WORDS) for _ in range(rng.randint(*words))]
        if rng.random() < 0.3:
            chosen.insert(rng.randrange(len(chosen)), str(rng.randint(2, 9999)))
        line = " ".join(chosen)
        lines.append(line[0].upper() + line[1:] + rng.choice(".,!?:") if rng.random() < 0.6 else line)
    return lines


def wrap(text: str, font: FontType, width: float) -> list[str]:
    """Greedy word wrap of one paragraph to lines no wider than ``width`` pixels."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and font.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _line_height(font: FontType, spacing: float) -> int:
    ascent, descent = font.getmetrics()
    return round((ascent + descent) * spacing)


def document(
    lines: list[str],
    *,
    name: str,
    font: FontType,
    width: int = 1200,
    margin: int = 40,
    spacing: float = 1.35,
    fg: str = "#111111",
    bg: str = "#ffffff",
) -> TextImage:
    """A plain page: the lines wrapped to the width, top to bottom."""
    wrapped = [part for line in lines for part in wrap(line, font, width - 2 * margin)]
    step = _line_height(font, spacing)
    image = Image.new("RGB", (width, 2 * margin + step * len(wrapped)), bg)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(wrapped):
        draw.text((margin, margin + index * step), line, font=font, fill=fg)
    return TextImage(name, image, "\n".join(wrapped))


@dataclass(frozen=True)
class _ChatTheme:
    background: str
    text: str
    muted: str
    sidebar: str
    names: tuple[str, ...]


_DARK = _ChatTheme("#313338", "#dbdee1", "#949ba4", "#2b2d31", ("#f23f43", "#23a55a", "#5865f2", "#f0b232"))
_LIGHT = _ChatTheme("#ffffff", "#1f2023", "#5c5e66", "#f2f3f5", ("#c62828", "#1b7a3d", "#3949ab", "#8d5b00"))


def _messages(seed: int) -> Iterator[tuple[str, str, list[str]]]:
    """An endless chat: (author, timestamp, paragraphs)."""
    rng = random.Random(seed)
    minute = 9 * 60
    while True:
        minute += rng.randint(0, 7)
        stamp = f"Today at {minute // 60 % 24}:{minute % 60:02d}"
        paragraphs = sample_lines(rng.randint(1, 2), seed=rng.randrange(1 << 30), words=(3, 14))
        yield rng.choice(_USERS), stamp, paragraphs


def chat_screenshot(
    *,
    name: str,
    width: int,
    height: int,
    seed: int,
    font_size: int,
    dark: bool = True,
    sidebar: int = 0,
) -> TextImage:
    """A chat client screenshot: avatars, coloured names, grey timestamps, wrapped messages.

    The optional sidebar is drawn as text-free placeholder bars so the reading order of the ground
    truth is unambiguous. Only messages that fit entirely are drawn.
    """
    theme = _DARK if dark else _LIGHT
    body = load_font(font_size)
    name_font = load_font(font_size, bold=True)
    stamp_font = load_font(max(8, round(font_size * 0.75)))
    image = Image.new("RGB", (width, height), theme.background)
    draw = ImageDraw.Draw(image)
    rng = random.Random(seed)
    if sidebar:
        draw.rectangle((0, 0, sidebar, height), fill=theme.sidebar)
        for y in range(font_size * 2, height - font_size * 2, font_size * 2):
            bar = rng.randint(sidebar // 3, sidebar - font_size * 2)
            draw.rounded_rectangle((font_size, y, font_size + bar, y + font_size), 6, fill=theme.muted)
    avatar = font_size * 5 // 2
    left = sidebar + font_size + avatar + font_size
    text_width = width - left - font_size * 2
    step = _line_height(body, 1.4)
    y = font_size
    truth: list[str] = []
    for author, stamp, paragraphs in _messages(seed):
        lines = [part for paragraph in paragraphs for part in wrap(paragraph, body, text_width)]
        needed = step * (len(lines) + 1) + font_size
        if y + needed > height - font_size:
            break
        colour = theme.names[_USERS.index(author) % len(theme.names)]
        draw.ellipse((sidebar + font_size, y, sidebar + font_size + avatar, y + avatar), fill=colour)
        draw.text((left, y), author, font=name_font, fill=colour)
        author_width = name_font.getlength(author)
        stamp_at = (left + author_width + font_size, y + font_size // 5)
        draw.text(stamp_at, stamp, font=stamp_font, fill=theme.muted)
        for index, line in enumerate(lines, start=1):
            draw.text((left, y + index * step), line, font=body, fill=theme.text)
        truth.append(f"{author} {stamp}")
        truth.extend(lines)
        y += needed
    return TextImage(name, image, "\n".join(truth))


def photo_of_page(*, name: str, seed: int, angle: float = 3.0, noise: float = 18.0) -> TextImage:
    """A page photographed at a slight angle: rotated, unevenly lit, blurred, noisy, JPEG-compressed."""
    page = document(sample_lines(22, seed=seed), name=name, font=load_font(30, "serif"), width=1400,
                    margin=70, bg="#f4f1e8", fg="#1a1a1a")
    photo = page.image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="#5a4a3a")
    # Light falling off towards the edges.
    shade = Image.radial_gradient("L").resize(photo.size).point(lambda v: 255 - v // 3)
    photo = Image.composite(photo, Image.new("RGB", photo.size, "#000000"), shade)
    photo = photo.filter(ImageFilter.GaussianBlur(0.8))
    grain = Image.effect_noise(photo.size, noise).convert("RGB")
    photo = Image.blend(photo, grain, 0.12)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=80)
    buffer.seek(0)
    return TextImage(name, Image.open(buffer).convert("RGB"), page.text)


def normalize(text: str) -> str:
    """Text as compared for CER: whitespace runs collapsed to one space, ends stripped."""
    return re.sub(r"\s+", " ", text).strip()


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), bit-parallel (Hyyrö 2003).

    Python's big integers make one pass over ``b`` cost a few word-parallel operations per
    character, so page-long texts are scored in milliseconds.
    """
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    # The pattern is the shorter string; its positions are the bits.
    pattern, text = b, a
    masks: dict[str, int] = {}
    for index, char in enumerate(pattern):
        masks[char] = masks.get(char, 0) | (1 << index)
    full = (1 << len(pattern)) - 1
    high = 1 << (len(pattern) - 1)
    positive, negative, score = full, 0, len(pattern)
    for char in text:
        eq = masks.get(char, 0)
        xv = eq | negative
        xh = (((eq & positive) + positive) ^ positive) | eq
        ph = negative | ~(xh | positive)
        mh = positive & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = (ph << 1) | 1
        mh <<= 1
        positive = (mh | ~(xv | ph)) & full
        negative = ph & xv & full
    return score


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance over the reference length, after :func:`normalize`; 0.0 is perfect."""
    reference, hypothesis = normalize(reference), normalize(hypothesis)
    if not reference:
        return float(bool(hypothesis))
    return levenshtein(reference, hypothesis) / len(reference)
