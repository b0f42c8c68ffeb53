"""One image in a channel both watched and described: moderation's check, then the description, each
getting its prepared image. Today's double path (each feature downloads and decodes on its own) and the
shared one (``bot.images.SharedImages``: one download, one decode) side by side in the same run.

Run: ``.venv/bin/python -m bench.shared_images [--runs 9] [--write-readme]``. The image is fetched over
HTTP from a local server standing for Discord's CDN (loopback, so the time is the bot's own work, not a
network's: a real CDN adds its latency once per download), through the real ``MediaFetcher``, download
gate and image worker. Time: both preparations, one after the other (describe waits for the verdict).
CPU: the process's CPU time over all its threads (the image worker's too), less disturbed by other
load than the wall time. CDN bytes: what the server sent. The model's time is left out (the same on
both paths).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import PIL
from aiohttp import web
from PIL import Image, ImageDraw, ImageFilter

from bench._common import machine, median, report
from bot.images import (
    CONVERSATION_DETAIL,
    Detail,
    DownloadGate,
    ImageWorker,
    MediaFetcher,
    ProxiedImage,
    SharedImages,
    downloaded,
)

log = logging.getLogger("bench.shared_images")


def phone_photo() -> bytes:
    """A 4000x3000 JPEG (q 90) with a photo's noise and gradients: what a phone posts."""
    base = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    noise = Image.effect_noise((4000, 3000), 48).convert("RGB")
    image = Image.blend(base, noise, 0.35).filter(ImageFilter.GaussianBlur(1))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def screenshot() -> bytes:
    """A 2560x1440 PNG of flat panels and text-like lines: a desktop screenshot."""
    image = Image.new("RGB", (2560, 1440), (54, 57, 63))
    draw = ImageDraw.Draw(image)
    for y in range(40, 1400, 28):
        draw.rectangle((300, y, 300 + (y * 37) % 1900, y + 12), fill=(220, 221, 222))
    draw.rectangle((0, 0, 240, 1440), fill=(47, 49, 54))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class Cdn:
    """Serves one file and counts the bytes it sent."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = 0

    async def serve(self, request: web.Request) -> web.Response:
        self.sent += len(self.data)
        return web.Response(body=self.data, content_type="application/octet-stream")


@asynccontextmanager
async def serving(cdn: Cdn) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", cdn.serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


Path = Callable[[ProxiedImage, Detail], Awaitable[None]]


def today(worker: ImageWorker, gate: DownloadGate) -> Path:
    async def both(source: ProxiedImage, moderation: Detail) -> None:
        for detail in (moderation, CONVERSATION_DETAIL):  # moderation's check, then describe's
            async with downloaded(source, gate) as data:
                await worker.prepare(data, detail=detail)

    return both


def shared_path(worker: ImageWorker, gate: DownloadGate) -> Path:
    async def both(source: ProxiedImage, moderation: Detail) -> None:
        shared = SharedImages(worker, gate)
        await shared.prepare(source, moderation, expect=CONVERSATION_DETAIL)
        await shared.prepare(source)

    return both


async def measure(data: bytes, moderation: Detail, runs: int) -> dict[str, tuple[float, float, int]]:
    """Median wall and CPU milliseconds and CDN bytes of each path for one image, interleaved run by run."""
    cdn = Cdn(data)
    worker, gate = ImageWorker(), DownloadGate()
    paths = {"today (each feature on its own)": today(worker, gate), "shared": shared_path(worker, gate)}
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    sent: dict[str, list[int]] = {name: [] for name in paths}
    try:
        async with serving(cdn) as origin:
            fetcher = MediaFetcher([origin])  # the only origin it may fetch from, as DISCORD_MEDIA_HOSTS
            try:
                for run in range(runs + 1):  # the first round warms up and is not counted
                    order = list(paths.items()) if run % 2 else list(paths.items())[::-1]
                    for name, path in order:
                        source = ProxiedImage.at(f"{origin}/attachments/{run}/{name[:5]}.img", fetcher)
                        before, started, used = cdn.sent, time.perf_counter(), time.process_time()
                        await path(source, moderation)
                        if run:
                            times[name].append((time.perf_counter() - started) * 1000)
                            cpu[name].append((time.process_time() - used) * 1000)
                            sent[name].append(cdn.sent - before)
            finally:
                await fetcher.close()
    finally:
        worker.close()
    return {name: (median(times[name]), median(cpu[name]), int(median(sent[name]))) for name in paths}


def run(runs: int) -> list[str]:
    images = {"4000x3000 JPEG photo": phone_photo(), "2560x1440 PNG screenshot": screenshot()}
    lines = [
        f"Machine: {machine(f'Pillow {PIL.__version__}')}. Median of {runs} runs per path, interleaved, after one "
        "warm-up; CDN on loopback.",
        "",
        "| image (file size) | moderation detail | path | median ms | median CPU ms | CDN bytes |",
        "|---|---|---|---:|---:|---:|",
    ]
    for label, data in images.items():
        for moderation in ("low", "auto"):
            results = asyncio.run(measure(data, moderation, runs))
            image = f"{label} ({len(data) / 2**20:.2f} MiB)"
            for name, (ms, cpu_ms, sent) in results.items():
                lines.append(f"| {image} | {moderation} | {name} | {ms:.1f} | {cpu_ms:.1f} | {sent:,} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    report(
        run(args.runs),
        write=args.write_readme,
        key="shared-images",
        title="One image, moderation and description",
        intro=(
            "`bench/shared_images.py`: one image in a channel both watched and described, moderation's "
            "check then the description, each with its prepared image: today's double path (two "
            "downloads, two decodes) and `SharedImages` (one download; the original decoded once, for the "
            "larger policy, the smaller made from that) in the same run. Model time left out. Refresh with "
            "`.venv/bin/python -m bench.shared_images --write-readme`."
        ),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
