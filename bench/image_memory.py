"""The image measurements of issue 13, run from ``bench/images.py``: memory and time of a small PNG that
decodes to a huge image, animation contact sheets, and a flood of such PNGs at once.

Memory is the peak resident set size (``VmHWM``, reset before the work) of a fresh child process, so
each figure is its own: the growth over the child's size before the work, or for the flood the whole
process (Linux only). The event
loop's lag during the flood is the longest a 10 ms sleep overslept.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from PIL import Image, ImageDraw

from bot.images import ImageWorker, MemoryGate, prepare_image, qwen_image_tokens, return_large_frees_to_the_os

BIG_SIDE = 7000
GIF_SIZE, GIF_FRAMES, SHEET_FRAMES = (800, 450), 100, 4


def big_png() -> bytes:
    """A 7000x7000 PNG of flat panels and lines (about 160 KB): decodes to 196 MB."""
    image = Image.new("RGB", (BIG_SIDE, BIG_SIDE), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    for i in range(0, BIG_SIDE, 350):
        draw.rectangle((i, i // 2, i + 300, i // 2 + 900), fill=(40 + i % 200, 90, 160))
        draw.line((0, i, BIG_SIDE, i), fill=(120, 120, 120), width=3)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def moving_gif() -> bytes:
    frames = []
    for i in range(GIF_FRAMES):
        frame = Image.new("RGB", GIF_SIZE, "white")
        x = i * (GIF_SIZE[0] - 80) // (GIF_FRAMES - 1)
        ImageDraw.Draw(frame).ellipse((x, 180, x + 80, 260), fill="red")
        frames.append(frame.convert("P"))
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    return buffer.getvalue()


def _status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024  # kB


def _reset_peak() -> None:
    """Start the peak (VmHWM) afresh: ``ru_maxrss`` would keep the parent's size from before the fork."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")


def _naive(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(io.BytesIO(), "JPEG")


def _one_job(path: str, data: bytes) -> tuple[float, float]:
    """In a fresh process: (ms, MB of peak RSS growth) of one preparation."""
    job: Callable[[bytes], object] = prepare_image if path == "prepare_image" else _naive
    _reset_peak()
    before = _status_mb("VmRSS")
    started = time.perf_counter()
    job(data)
    return 1000 * (time.perf_counter() - started), _status_mb("VmHWM") - before


def _flood(data: bytes, count: int, budget: int, give_back: bool) -> tuple[float, float, float, int]:
    """In a fresh process: (seconds, peak RSS MB, worst loop lag ms, answered) for ``count`` at once;
    ``give_back``: as the bot runs, with :func:`return_large_frees_to_the_os`."""
    if give_back:
        return_large_frees_to_the_os()

    async def run() -> tuple[float, float, int]:
        worker = ImageWorker(memory=MemoryGate(budget))
        lags: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            loop = asyncio.get_running_loop()
            while not done.is_set():
                before = loop.time()
                await asyncio.sleep(0.01)
                lags.append(loop.time() - before - 0.01)

        probing = asyncio.create_task(probe())
        started = time.perf_counter()
        results = await asyncio.gather(*(worker.prepare(data) for _ in range(count)), return_exceptions=True)
        seconds = time.perf_counter() - started
        done.set()
        await probing
        worker.close()
        return seconds, 1000 * max(lags, default=0.0), sum(1 for r in results if not isinstance(r, BaseException))

    _reset_peak()
    seconds, lag, answered = asyncio.run(run())
    return seconds, _status_mb("VmHWM"), lag, answered


def _in_child(fn: Callable[..., object], *args: object) -> object:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def big_png_lines(repeat: int) -> list[str]:
    data = big_png()
    lines = [f"- 7000x7000 PNG ({len(data) / 1e3:.0f} KB, {BIG_SIDE * BIG_SIDE * 4 / 1e6:.0f} MB decoded), "
             f"median of {repeat} fresh processes each:"]
    for path in ("naive", "prepare_image"):
        runs = [_in_child(_one_job, path, data) for _ in range(repeat)]
        ms = statistics.median(r[0] for r in runs)  # type: ignore[index]
        mb = statistics.median(r[1] for r in runs)  # type: ignore[index]
        lines.append(f"  - {path}: {ms:.0f} ms, peak memory +{mb:.0f} MB")
    return lines


def sheet_lines(repeat: int) -> list[str]:
    data = moving_gif()
    image = Image.open(io.BytesIO(data))
    indices = [round(i * (GIF_FRAMES - 1) / (SHEET_FRAMES - 1)) for i in range(SHEET_FRAMES)]
    frames = []
    for index in indices:
        image.seek(index)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "PNG")
        frames.append(buffer.getvalue())

    def timed(job: Callable[[], object]) -> tuple[float, object]:
        result = job()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = job()
            times.append(time.perf_counter() - started)
        return 1000 * statistics.median(times), result

    sheet_ms, sheet = timed(lambda: prepare_image(data, frames=SHEET_FRAMES))
    separate_ms, separate = timed(lambda: [prepare_image(frame, frames=1) for frame in frames])
    sheet_tokens = sheet.tokens  # type: ignore[attr-defined]
    separate_tokens = sum(p.tokens for p in separate)  # type: ignore[attr-defined]
    w, h = GIF_SIZE
    return [
        f"- {GIF_FRAMES}-frame {w}x{h} GIF ({len(data) / 1e3:.0f} KB), median of {repeat}: one {SHEET_FRAMES}-frame "
        f"contact sheet ({sheet.width}x{sheet.height}) in {sheet_ms:.0f} ms, {sheet_tokens:,} image tokens; "  # type: ignore[attr-defined]
        f"the same {SHEET_FRAMES} frames sent separately: {separate_tokens:,} tokens "
        f"({separate_tokens / sheet_tokens:.1f}x more, and {SHEET_FRAMES} images against a limit of 2 per request), "
        f"{separate_ms:.0f} ms to prepare (decoding the frames not counted); one frame at full size would be "
        f"{qwen_image_tokens(w, h):,} tokens",
    ]


def flood_lines(count: int) -> list[str]:
    data = big_png()
    lines = [f"- {count} such 7000x7000 PNGs prepared at once (2 worker threads), one fresh process each:"]
    runs = (
        ("before (no decode budget, glibc's default)", 1 << 40, False),
        ("decode budget only (IMAGE_MEMORY_MB=256)", 256 * 2**20, False),
        ("as the bot runs (budget, large frees returned)", 256 * 2**20, True),
    )
    for label, budget, give_back in runs:
        seconds, rss, lag, answered = _in_child(_flood, data, count, budget, give_back)  # type: ignore[misc]
        lines.append(f"  - {label}: peak RSS {rss:.0f} MB, {seconds:.1f} s in all, {answered}/{count} prepared, "
                     f"worst event-loop lag {lag:.0f} ms")
    return lines
