"""Memory benchmark: what 10,000 channels of stored conversation cost, and how fast a request is built.

Run: ``.venv/bin/python -m bench.memory [--channels 10000] [--turns 10] [--redis URL]``.

It fills a fresh SQLite store (in a temporary directory) with ``--channels`` conversations of
``--turns`` turns (question and answer pairs, stored with ``append_exchange`` as the bot does; an odd
count is rounded up): every channel's first user turn carries a ~60 KB prepared image, one in five of
them unique, the rest drawn from a pool of 50 shared images (the same meme posted in many channels).
Then it reports the process RSS (now and peak) and the database size, and the median time to build a
request for a 50-turn history holding 20 images:

* **plan + render**: ``plan_request`` and ``render`` with the history and image bytes already in memory;
* **with store**: ``history()`` + ``plan_request`` + ``get_images()`` + ``render``, as the bot does it.

With ``--redis URL`` (or a ``redis-server`` on PATH, started on a free port for the run) the same is
measured against Redis, whose memory is the server's ``used_memory``.
Targets (issue 4): under 250 MB RSS and under 5 ms per request build (median).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import random
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import redis
import redis.asyncio as aioredis

from bench import _common as common
from bot.conversation import ImageRef, MemoryLimits, Turn, plan_request
from bot.images import PreparedImage
from bot.store import Store, open_store

log = logging.getLogger("bench.memory")

IMAGE_BYTES = 60_000
SHARED_IMAGES = 50
UNIQUE_EVERY = 5
HISTORY_TURNS = 50
HISTORY_IMAGES = 20
BUILD_RUNS = 300
FILL_CONCURRENCY = 16
SYSTEM_PROMPT = "You are Glimpse, a helpful assistant in a Discord server. " * 8
LIMITS = MemoryLimits(max_turns=HISTORY_TURNS, max_tokens=6000, max_images_per_request=2)
BENCH_CHANNEL = 1


def make_image(rng: random.Random) -> PreparedImage:
    """Incompressible bytes of a typical prepared JPEG's size (the store treats them as opaque)."""
    return PreparedImage(rng.randbytes(IMAGE_BYTES), "image/jpeg", 1024, 768, "auto", 1015)


def make_turn(n: int, *, role: str, at: float, images: Sequence[PreparedImage] = ()) -> Turn:
    words = "the red car by the lake looks like a hatchback from the nineties " * (2 if role == "user" else 5)
    return Turn(
        role,  # type: ignore[arg-type]
        f"member {n % 97}" if role == "user" else "Glimpse",
        n % 97 if role == "user" else 1,
        f"{n}: {words}",
        tuple(ImageRef.of(image) for image in images),
        created_at=at,
        message_id=n,
    )


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB, from /proc (Linux)."""
    fields = dict(
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def fill(store: Store, channels: int, turns: int, rng: random.Random) -> float:
    """Store ``channels`` conversations; returns the seconds it took."""
    shared = [make_image(rng) for _ in range(SHARED_IMAGES)]
    started = time.perf_counter()
    now = time.time()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for channel in range(channels):
        queue.put_nowait(channel + 100)

    async def worker() -> None:
        while not queue.empty():
            channel = queue.get_nowait()
            image = make_image(rng) if channel % UNIQUE_EVERY == 0 else rng.choice(shared)
            for t in range(0, turns, 2):
                attached = [image] if t == 0 else []
                question = make_turn(channel * 100 + t, role="user", at=now - 3600 + t * 30, images=attached)
                answer = make_turn(channel * 100 + t + 1, role="assistant", at=now - 3600 + (t + 1) * 30)
                await store.append_exchange(channel, question, answer, attached)

    await asyncio.gather(*(worker() for _ in range(FILL_CONCURRENCY)))
    return time.perf_counter() - started


async def fill_bench_channel(store: Store, rng: random.Random) -> None:
    now = time.time()
    for t in range(0, HISTORY_TURNS, 2):
        images = [make_image(rng)] if t // 2 < HISTORY_IMAGES else []
        question = make_turn(t, role="user", at=now - 600 + t, images=images)
        answer = make_turn(t + 1, role="assistant", at=now - 600 + t + 1)
        await store.append_exchange(BENCH_CHANNEL, question, answer, images)


@dataclass(frozen=True)
class BuildTimes:
    plan_render_ms: float
    with_store_ms: float
    messages: int
    images_sent: int
    tokens: int


async def time_builds(store: Store) -> BuildTimes:
    history = await store.history(BENCH_CHANNEL, limit=HISTORY_TURNS)
    assert len(history) == HISTORY_TURNS, len(history)
    assert sum(len(turn.images) for turn in history) == HISTORY_IMAGES
    all_images = await store.get_images({ref.sha256 for turn in history for ref in turn.images})
    current = make_turn(10**9, role="user", at=time.time(), images=())

    pure: list[float] = []
    for _ in range(BUILD_RUNS):
        started = time.perf_counter()
        plan = plan_request(system_prompt=SYSTEM_PROMPT, history=history, current=current, limits=LIMITS)
        messages = plan.render(all_images)
        pure.append(time.perf_counter() - started)

    full: list[float] = []
    for _ in range(BUILD_RUNS):
        started = time.perf_counter()
        turns = await store.history(BENCH_CHANNEL, limit=LIMITS.max_turns)
        plan = plan_request(system_prompt=SYSTEM_PROMPT, history=turns, current=current, limits=LIMITS)
        messages = plan.render(await store.get_images(plan.image_hashes))
        full.append(time.perf_counter() - started)
    return BuildTimes(
        statistics.median(pure) * 1000,
        statistics.median(full) * 1000,
        len(messages),
        plan.images_sent,
        plan.tokens,
    )


def sqlite_size(path: Path) -> str:
    wal = path.with_name(path.name + "-wal")
    return (
        f"database file {path.stat().st_size / 1e6:.1f} MB"
        f" + WAL {wal.stat().st_size / 1e6 if wal.exists() else 0:.1f} MB"
    )


async def run_sqlite(channels: int, turns: int, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-") as directory:
        path = Path(directory) / "glimpse.db"
        store = await open_store(f"sqlite:///{path}")
        try:
            seconds = await fill(store, channels, turns, random.Random(seed))
            await fill_bench_channel(store, random.Random(seed + 1))
            stats = await store.stats()
            rss_filled = rss_mb()
            times = await time_builds(store)
        finally:
            await store.close()
        report(
            "SQLite",
            seconds,
            stats_line=f"{stats.channels} channels, {stats.turns} turns, {stats.images} images "
            f"({stats.image_bytes / 1e6:.1f} MB of image bytes)",
            size=sqlite_size(path),
            rss=rss_filled,
            times=times,
        )


async def run_redis(url: str, channels: int, turns: int, seed: int) -> None:
    store = await open_store(url)
    client = aioredis.from_url(url)
    try:
        await client.flushdb()
        seconds = await fill(store, channels, turns, random.Random(seed))
        await fill_bench_channel(store, random.Random(seed + 1))
        stats = await store.stats()
        rss_filled = rss_mb()
        info = await client.info("memory")
        times = await time_builds(store)
        await client.flushdb()
    finally:
        await client.aclose()
        await store.close()
    report(
        "Redis",
        seconds,
        stats_line=f"{stats.channels} channels, {stats.turns} turns, {stats.images} images",
        size=f"server used_memory {info['used_memory'] / 1e6:.1f} MB,"
        f" server RSS {info['used_memory_rss'] / 1e6:.1f} MB",
        rss=rss_filled,
        times=times,
    )


def report(
    backend: str, seconds: float, *, stats_line: str, size: str, rss: tuple[float, float], times: BuildTimes
) -> None:
    log.info("== %s ==", backend)
    log.info("filled in %.1f s: %s", seconds, stats_line)
    log.info("%s", size)
    log.info("bot process RSS after filling: %.1f MB (peak %.1f MB)", *rss)
    log.info(
        "request from a %d-turn history with %d images (%d messages, %d images sent, ~%d tokens):",
        HISTORY_TURNS,
        HISTORY_IMAGES,
        times.messages,
        times.images_sent,
        times.tokens,
    )
    log.info("  median plan + render:        %.3f ms", times.plan_render_ms)
    log.info("  median with store look-ups:  %.3f ms", times.with_store_ms)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def local_redis() -> AsyncIterator[str | None]:
    """A throw-away redis-server on a free 127.0.0.1 port, or ``None`` when none is installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="glimpse-redis-") as directory:
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            executable, "--bind", "127.0.0.1", "--port", str(port), "--dir", directory,
            "--save", "", "--appendonly", "no", stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = aioredis.from_url(url)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    break
                except redis.ConnectionError:
                    await asyncio.sleep(0.05)
            log.info("redis-server %s", (await client.info("server"))["redis_version"])
            yield url
        finally:
            await client.aclose()
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)


def machine() -> str:
    return common.machine(
        f"{platform.system()} {platform.release()}",
        f"SQLite {sqlite3.sqlite_version}, aiosqlite {aiosqlite.__version__}, redis-py {redis.__version__}",
    )


async def run(args: argparse.Namespace) -> None:
    log.info("%s", machine())
    log.info("%d channels x %d turns; images %d KB", args.channels, args.turns, IMAGE_BYTES // 1000)
    log.info("start RSS %.1f MB; max RSS so far %.1f MB",
             rss_mb()[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if args.backend in ("sqlite", "both"):
        await run_sqlite(args.channels, args.turns, args.seed)
    if args.backend in ("redis", "both"):
        if args.redis:
            await run_redis(args.redis, args.channels, args.turns, args.seed)
            return
        async with local_redis() as url:
            if url is None:
                log.info("Redis: skipped (no redis-server on PATH and no --redis URL)")
            else:
                await run_redis(url, args.channels, args.turns, args.seed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--backend", choices=("sqlite", "redis", "both"), default="both")
    parser.add_argument("--redis", help="an existing Redis URL to use (its database is flushed!)")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
