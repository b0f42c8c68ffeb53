"""Image bench: ``prepare_image`` against the naive path, side by side in one run.

Run: ``.venv/bin/python -m bench.images [--repeat 9] [--write-readme]``.

Inputs (generated, see tests/unit/image_corpus.py): a 4000x3000 photo-like JPEG (quality 92) and a
1920x1080 PNG screenshot. The naive path is ``Image.open`` -> ``save(JPEG)`` -> base64; it raises on
an RGBA PNG, so here it converts to RGB only when it has to. For each input and path: the median
time (base64 included), the bytes sent (base64 length) and the image tokens Qwen2.5-VL bills.
Targets (issue 3), on the photo: at least 3x faster than naive (5x is the aim), at least 10x fewer
image tokens, base64 under 1 MB. The OCR policy (``prepare_text_images``) is timed alongside.
With ``--write-readme`` the results replace the marked block of the Images section of bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import PIL
from PIL import Image, features

from bench import _common as common
from bench import image_memory
from bench._common import report
from bot.images import MAX_DATA_URL_CHARS, codec, policy, prepare_image, prepare_text_images, qwen_image_tokens
from tests.unit import image_corpus as corpus

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Sent:
    chars: int  # base64 length
    width: int
    height: int

    @property
    def tokens(self) -> int:
        return qwen_image_tokens(self.width, self.height)


def naive(data: bytes) -> Sent:
    """What a first attempt does: decode everything, re-encode everything, at full size."""
    image = Image.open(io.BytesIO(data))
    if image.mode not in ("RGB", "L"):  # without this, RGBA raises "cannot write mode RGBA as JPEG"
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return Sent(len(base64.b64encode(buffer.getvalue())), image.width, image.height)


def prepared(data: bytes) -> Sent:
    image = prepare_image(data)
    return Sent(len(image.data_url.split(",", 1)[1]), image.width, image.height)


def ocr_policy(data: bytes) -> Sent:
    tiles = prepare_text_images(data)
    return Sent(sum(len(t.data_url.split(",", 1)[1]) for t in tiles), tiles[0].width,
                sum(t.height for t in tiles))


def naive_fails_on_rgba() -> str:
    rgba = corpus.encode(corpus.screenshot(640, 360).convert("RGBA"), "PNG")
    try:
        Image.open(io.BytesIO(rgba)).save(io.BytesIO(), "JPEG")
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    return "no error (unexpected)"


def median_ms(fn: Callable[[_T], _R], data: _T, repeat: int) -> tuple[float, _R]:
    result = fn(data)  # warm-up: plugin imports, first allocations
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(data)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times), result


def interleaved_ms(fns: dict[str, Callable[[_T], object]], arg: _T, repeat: int) -> dict[str, float]:
    """Median ms of each function, run in turns (one call of each per round), so a burst of load
    from elsewhere falls on all of them rather than on one."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeat + 1):  # the first round warms up
        for name, fn in fns.items():
            started = time.perf_counter()
            fn(arg)
            if round_:
                times[name].append(time.perf_counter() - started)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def screenshot_lines(data: bytes, repeat: int) -> list[str]:
    """Where the screenshot's time goes, step by step, and the resampling alternatives at the same size."""
    image = decoded(data).convert("RGB")
    sent = prepare_image(data)
    size = sent.width, sent.height
    small = codec.resize(image, size)
    jpeg = codec.save(small, "JPEG", quality=85, subsampling=0)
    steps: dict[str, Callable[[Image.Image], object]] = {
        "decode": lambda _: decoded(data),
        "graphic test": policy.looks_like_graphic,
        f"resize to {size[0]}x{size[1]}": lambda im: codec.resize(im, size),
        "JPEG q85 4:4:4": lambda _: codec.save(small, "JPEG", quality=85, subsampling=0),
        "base64": lambda _: base64.b64encode(jpeg),
    }
    steps["the naive path's JPEG q75 4:2:0 at full size"] = lambda im: codec.save(im, "JPEG")
    ours = "; ".join(f"{name} {ms:.1f}" for name, ms in interleaved_ms(steps, image, repeat).items())
    half = image.width // 2, image.height // 2
    alternatives: dict[str, Callable[[Image.Image], object]] = {
        name: functools.partial(Image.Image.resize, size=size, resample=resample)
        for name, resample in (("Lanczos", Image.Resampling.LANCZOS), ("bicubic", Image.Resampling.BICUBIC),
                               ("bilinear", Image.Resampling.BILINEAR), ("box", Image.Resampling.BOX))
    }
    alternatives[f"reduce(2) to {half[0]}x{half[1]} ({qwen_image_tokens(*half):,} tokens)"] = (
        lambda im: im.reduce(2))
    timed = "; ".join(f"{name} {ms:.1f}" for name, ms in interleaved_ms(alternatives, image, repeat).items())
    return [f"- screenshot, where prepare_image's time goes (ms, median of {repeat}, in turns): {ours}",
            f"- screenshot, resampling {image.width}x{image.height} to {size[0]}x{size[1]} with each filter "
            f"(ms, in turns): {timed}"]


def machine() -> str:
    turbo = "libjpeg-turbo" if features.check_feature("libjpeg_turbo") else "libjpeg"
    return common.machine(f"Pillow {PIL.__version__} ({turbo})")


def run(repeat: int, flood: int = 50) -> list[str]:
    inputs = {
        "photo 4000x3000 JPEG q92": corpus.photo_jpeg(4000, 3000, quality=92),
        "screenshot 1920x1080 PNG": corpus.screenshot_png(1920, 1080),
    }
    lines = [f"Machine: {machine()}. Median of {repeat} runs after one warm-up; base64 included.", "",
             "| input | path | median ms | base64 sent | image tokens | sent size |",
             "|---|---|---:|---:|---:|---|"]
    verdicts = []
    for name, data in inputs.items():
        naive_ms, naive_sent = median_ms(naive, data, repeat)
        ours_ms, ours_sent = median_ms(prepared, data, repeat)
        for path, ms, sent in (("naive", naive_ms, naive_sent), ("prepare_image", ours_ms, ours_sent)):
            lines.append(f"| {name} ({len(data) / 1e6:.2f} MB) | {path} | {ms:.1f} | {sent.chars:,} | "
                         f"{sent.tokens:,} | {sent.width}x{sent.height} |")
        speed = (f"{naive_ms / ours_ms:.1f}x faster" if ours_ms <= naive_ms
                 else f"{ours_ms / naive_ms:.1f}x slower")
        verdicts.append(f"{name}: {speed}, "
                        f"{naive_sent.tokens / ours_sent.tokens:.1f}x fewer image tokens, "
                        f"{naive_sent.chars / ours_sent.chars:.1f}x fewer bytes; "
                        f"under 1 MB: naive {'yes' if naive_sent.chars < MAX_DATA_URL_CHARS else 'NO'}, "
                        f"prepared {'yes' if ours_sent.chars < MAX_DATA_URL_CHARS else 'NO'}")
    lines += ["", *screenshot_lines(inputs["screenshot 1920x1080 PNG"], repeat)]
    tall = corpus.encode(corpus.tall_screenshot(1080, 8000), "PNG")
    tall_ms, tall_sent = median_ms(ocr_policy, tall, max(3, repeat // 3))
    tiles = len(prepare_text_images(tall))
    lines += [*(f"- {verdict}" for verdict in verdicts),
              f"- OCR policy on a 1080x8000 PNG ({len(tall) / 1e6:.2f} MB): {tiles} PNG tiles in "
              f"{tall_ms:.0f} ms, {tall_sent.chars:,} base64 chars in all",
              f"- naive path on an RGBA PNG without the conversion: {naive_fails_on_rgba()}"]
    lines += ["", *image_memory.big_png_lines(max(3, repeat // 3)), *image_memory.sheet_lines(repeat)]
    if flood:
        lines += image_memory.flood_lines(flood)
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per input and path")
    parser.add_argument("--write-readme", action="store_true", help="store the results in bench/README.md")
    parser.add_argument("--flood", type=int, default=50, help="PNGs of 7000x7000 prepared at once (0: skip)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    lines = run(args.repeat, args.flood)
    report(lines, write=args.write_readme, key="images", title="Images")


if __name__ == "__main__":
    main()
