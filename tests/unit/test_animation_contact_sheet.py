"""Animations reach the model as one numbered contact sheet of frames spread over the whole animation;
one too large to sample is shown by its first frame; a still image is untouched by all this."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from bot.images import animation, prepare_image
from bot.images.animation import grid, sheet_layout, spread
from bot.prompts import animation_note, describe_request

WIDTH, HEIGHT, DOT = 400, 200, 40


def moving_dot(frames: int = 100, fmt: str = "GIF", size: tuple[int, int] = (WIDTH, HEIGHT)) -> bytes:
    """An animation of a red dot moving left to right: frame i has the dot at x = i * step."""
    step = (size[0] - DOT) / max(1, frames - 1)
    images = []
    for i in range(frames):
        frame = Image.new("RGB", size, "white")
        x = round(i * step)
        ImageDraw.Draw(frame).rectangle((x, size[1] // 2 - DOT // 2, x + DOT, size[1] // 2 + DOT // 2), fill="red")
        images.append(frame)
    buffer = io.BytesIO()
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], duration=40, loop=0)
    return buffer.getvalue()


def test_frames_are_spread_from_the_first_to_the_last() -> None:
    assert spread(100, 4) == [0, 33, 66, 99]
    assert spread(3, 4) == [0, 1, 2]
    assert spread(10, 1) == [0]
    assert [grid(n) for n in (2, 3, 4, 6, 9)] == [(2, 1), (2, 2), (2, 2), (3, 2), (3, 3)]
    columns, rows, cell_w, _ = sheet_layout(4000, 2000, 4, 1024)
    assert (columns, rows) == (2, 2) and 2 * cell_w + animation.SHEET_GAP <= 1024


def red_centre(sheet: Image.Image, box: tuple[int, int, int, int]) -> float:
    """The horizontal centre of the red pixels inside ``box``, as a fraction of its width."""
    cell = sheet.crop(box).convert("RGB")
    xs = [x for x in range(cell.width) for y in range(0, cell.height, 4) if _red(cell.getpixel((x, y)))]
    return (sum(xs) / len(xs)) / cell.width


def _red(pixel: tuple[int, int, int]) -> bool:
    r, g, b = pixel
    return r > 180 and g < 90 and b < 90


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])  # GIF, APNG, animated WebP
def test_a_100_frame_animation_becomes_one_sheet_of_4_frames_in_order(fmt: str) -> None:
    prepared = prepare_image(moving_dot(100, fmt), frames=4)
    assert prepared.frames == 4
    sheet = Image.open(io.BytesIO(prepared.data))
    _, _, cell_w, cell_h = sheet_layout(WIDTH, HEIGHT, 4, 1024)
    gap = animation.SHEET_GAP
    boxes = [(c * (cell_w + gap), r * (cell_h + gap), c * (cell_w + gap) + cell_w, r * (cell_h + gap) + cell_h)
             for r in range(2) for c in range(2)]
    assert sheet.size == (2 * cell_w + gap, 2 * cell_h + gap)
    centres = [red_centre(sheet, box) for box in boxes]
    expected = [(i * (WIDTH - DOT) / 99 + DOT / 2) / WIDTH for i in (0, 33, 66, 99)]
    assert centres == pytest.approx(expected, abs=0.03)  # frames 1, 34, 67 and 100, in reading order


def test_one_frame_asked_or_too_large_to_sample_means_the_first_frame_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    data = moving_dot(20)
    single = prepare_image(data, frames=1)
    assert single.frames == 1 and (single.width, single.height) == (WIDTH, HEIGHT)
    monkeypatch.setattr(animation, "MAX_ANIMATION_PIXELS", 10 * WIDTH * HEIGHT)  # 20 frames will not do
    first = prepare_image(data, frames=4)
    assert first.frames == 1 and (first.width, first.height) == (WIDTH, HEIGHT)
    assert red_centre(Image.open(io.BytesIO(first.data)), (0, 0, WIDTH, HEIGHT)) < 0.1


def test_a_large_animation_sheet_costs_the_tokens_of_one_image_not_of_four() -> None:
    big = prepare_image(moving_dot(12, size=(1600, 900)), frames=4)
    frame = prepare_image(moving_dot(1, size=(1600, 900)), frames=4)
    assert big.frames == 4 and frame.frames == 1
    assert big.tokens <= frame.tokens * 1.1  # four frames for about the price of one


def test_the_prompt_says_which_image_is_a_sheet() -> None:
    assert animation_note([1, 1]) == ""
    note = animation_note([1, 4])
    assert note.startswith("(Image 2 is an animation: 4 of its frames")
    assert describe_request(1, None, [4]).startswith("Write alt text for this image.\n(Image 1 is an animation")
    assert describe_request(1, None, [1]) == "Write alt text for this image."
