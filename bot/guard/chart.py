"""The ``/usage`` chart: tokens per day and feature over the last days, as stacked bars in a small PNG.

Drawn with Pillow (already a dependency for images), no plotting library.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont

from bot.guard.limits import Purpose
from bot.store import UsageRow

WIDTH, HEIGHT = 640, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 12, 30, 28
BACKGROUND = (49, 51, 56)  # Discord's dark theme, so the chart sits well in the client
AXIS = (148, 155, 164)
COLOURS = {
    Purpose.CHAT: (88, 101, 242),
    Purpose.DESCRIBE: (87, 242, 135),
    Purpose.ALT_TEXT: (254, 231, 92),
    Purpose.OCR: (235, 69, 158),
    Purpose.MODERATION: (237, 66, 69),
}


def _short(number: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if number >= size:
            return f"{number / size:.3g}{suffix}"
    return f"{number:.0f}"


def usage_chart(rows: Iterable[UsageRow], days: Sequence[str]) -> bytes:
    """A PNG of the tokens of ``rows`` per day of ``days`` (oldest first), one colour per feature."""
    per_day: dict[str, dict[Purpose, int]] = {day: {} for day in days}
    for row in rows:
        if row.day in per_day:
            stack = per_day[row.day]
            feature = Purpose(row.feature)
            stack[feature] = stack.get(feature, 0) + row.tokens
    peak = max((sum(stack.values()) for stack in per_day.values()), default=0) or 1
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base = MARGIN_TOP + plot_h
    draw.line([(MARGIN_LEFT, MARGIN_TOP), (MARGIN_LEFT, base), (WIDTH - MARGIN_RIGHT, base)], fill=AXIS)
    draw.text((4, MARGIN_TOP - 6), _short(peak), fill=AXIS, font=font)
    draw.text((4, base - 6), "0", fill=AXIS, font=font)
    slot = plot_w / max(len(days), 1)
    for index, day in enumerate(days):
        left = MARGIN_LEFT + index * slot + slot * 0.15
        right = MARGIN_LEFT + (index + 1) * slot - slot * 0.15
        top = float(base)
        for feature in Purpose:
            count = per_day[day].get(feature, 0)
            if count:
                height = count / peak * plot_h
                draw.rectangle([left, top - height, right, top], fill=COLOURS[feature])
                top -= height
    if days:
        draw.text((MARGIN_LEFT, base + 8), days[0][5:], fill=AXIS, font=font)
        draw.text((WIDTH - MARGIN_RIGHT - 30, base + 8), days[-1][5:], fill=AXIS, font=font)
    x = MARGIN_LEFT
    for feature in Purpose:
        draw.rectangle([x, 10, x + 10, 20], fill=COLOURS[feature])
        draw.text((x + 14, 9), feature.label, fill=AXIS, font=font)
        x += 24 + int(draw.textlength(feature.label, font=font))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
