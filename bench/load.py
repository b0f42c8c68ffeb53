"""Glimpse under load: 400 image questions in one minute over 40 channels in 4 servers, through the real
clients, on one process holding both shards and on two processes (one shard each), in the same run.

Each configuration runs real ``python -m bot`` processes against the Discord emulator and the VLM
server (both in this process) and a private redis-server (the store the processes share). The model is
played at 1 s to the first token, then ~40 tokens/s (4 characters every 25 ms); ``VLM_MAX_CONCURRENCY``
is raised so that the model is not the bottleneck. Per process: the event-loop lag (sampled every
10 ms by the bot itself, read from its ``/metrics``: p50 and p99 interpolated within the histogram's
buckets over the samples taken during the load, and the worst of the last minute), RSS (now and at
its peak, from /proc), Discord requests per second at the peak (the most in any one-second window,
counted by the emulator for the channels of the process's shards), 429s, and time from the post to
the first words and to the full answer (p50, p99). Every question must be answered exactly once.

Run: ``python -m bench.load [--questions 400] [--seconds 60] [--runs 1] [--write-readme]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import discord
import openai
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from bench._common import machine, report
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, GatewayConfig, Message, World
from tests.fakes.vlm import Script, VLMServer
from tests.store.conftest import free_port, redis_server

log = logging.getLogger("bench.load")

ROOT = Path(__file__).resolve().parents[1]
SERVERS, CHANNELS_PER_SERVER, SHARDS, PEOPLE = 4, 10, 2, 10
FIRST_TOKEN, CHUNK, CHUNK_DELAY = 1.0, 4, 0.025  # ~40 tokens/s at ~4 characters per token
ANSWER = "A small picture: a flat coloured rectangle, no text, no people, nothing else in the frame. " * 2
STARTUP_TIMEOUT, SETTLE = 60.0, 6.0  # a fresh process holds its first replies ~5 s back (pacing cold start)


def load_world() -> World:
    world = World()
    people = [world.add_user(f"person-{n}") for n in range(PEOPLE)]
    for number in range(SERVERS):
        guild = world.add_guild(f"load-{number}", shard=(number % SHARDS, SHARDS))
        for person in people:
            world.add_member(guild, person)
        for channel in range(CHANNELS_PER_SERVER):
            world.add_text_channel(guild, f"s{number}-c{channel}")
    return world


def picture(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Process:
    name: str
    shards: tuple[int, ...]
    port: int
    process: asyncio.subprocess.Process | None = None
    channels: set[int] = field(default_factory=set)

    async def metrics(self) -> Samples:
        url = f"http://127.0.0.1:{self.port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def memory(self) -> tuple[float, float]:
        """RSS now and at its peak, in MiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear interpolation within the bucket holding the quantile."""
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def lag_buckets(samples: Samples) -> dict[float, float]:
    return {
        float(dict(labels)["le"]): value
        for (name, labels), value in samples.items()
        if name == "glimpse_event_loop_lag_seconds_bucket"
    }


def lag_figures(before: Samples, after: Samples) -> tuple[float, float, float]:
    """p50 and p99 of the samples taken during the load (the histogram's change), and the worst lag of
    the last minute (the bot's own gauge), in ms."""
    start, end = lag_buckets(before), lag_buckets(after)
    buckets = sorted((bound, count - start.get(bound, 0.0)) for bound, count in end.items())
    worst = after[("glimpse_event_loop_lag_max_seconds", ())]
    return histogram_quantile(buckets, 0.5) * 1000, histogram_quantile(buckets, 0.99) * 1000, worst * 1000


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def peak_per_second(stamps: Sequence[float]) -> int:
    ordered, best, start = sorted(stamps), 0, 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


@contextlib.asynccontextmanager
async def bots(processes: list[Process], env: dict[str, str], logs: Path) -> AsyncIterator[None]:
    try:
        for proc in processes:
            shard_env = {"SHARD_IDS": ",".join(map(str, proc.shards))} if len(proc.shards) < SHARDS else {}
            with (logs / f"{proc.name}.log").open("ab") as out:
                proc.process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", cwd=ROOT, stdout=out, stderr=out,
                    env={**env, **shard_env, "METRICS_PORT": str(proc.port)},
                )
        yield
    finally:
        for proc in processes:
            if proc.process is not None and proc.process.returncode is None:
                proc.process.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.process.wait(), 20)
                if proc.process.returncode is None:
                    proc.process.kill()
                    await proc.process.wait()


async def one_configuration(
    label: str, layout: list[tuple[str, tuple[int, ...]]], questions: int, seconds: float, redis_url: str, logs: Path
) -> list[dict[str, object]]:
    """Run the load once on ``layout`` (process name -> its shards); one row of figures per process."""
    world = load_world()
    config = EmulatorConfig(gateway=GatewayConfig(recommended_shards=SHARDS))
    async with VLMServer() as vlm, DiscordEmulator(world=world, config=config) as emulator:
        async def model(_request: object) -> Script:
            await asyncio.sleep(FIRST_TOKEN)
            return Script(text=ANSWER, chunk_size=CHUNK, delay=CHUNK_DELAY)

        vlm.respond_with(model)
        channels = [c for c in world.channels.values() if c.guild_id is not None]
        env = {
            **os.environ, **emulator.environment(), "PYTHONPATH": str(ROOT),
            "VLM_API_KEY": vlm.api_key, "VLM_BASE_URL": vlm.base_url, "VLM_MAX_CONCURRENCY": "128",
            "DESCRIBE_CHANNEL_IDS": ",".join(str(c.id) for c in channels), "STORE_URL": redis_url,
            "SHARD_COUNT": str(SHARDS), "LOG_LEVEL": "WARNING",
        }
        processes = [Process(name, shards, free_port()) for name, shards in layout]
        for proc in processes:
            proc.channels = {c.id for c in channels if (c.guild_id >> 22) % SHARDS in proc.shards}
        people = [world.user_named(f"person-{n}") for n in range(PEOPLE)]
        pictures = [picture(n) for n in range(8)]
        async with bots(processes, env, logs):
            await emulator.wait_until_connected(sessions=SHARDS, timeout=STARTUP_TIMEOUT)
            await asyncio.sleep(SETTLE)
            before = {proc.name: await proc.metrics() for proc in processes}
            started = time.monotonic()
            posts: list[tuple[Message, float]] = []
            for n in range(questions):
                await asyncio.sleep(max(0.0, started + n * seconds / questions - time.monotonic()))
                channel = channels[n % len(channels)]
                posted_at = time.monotonic()
                message = await emulator.post_message(
                    people[n % PEOPLE], channel, "", attachments=[(f"p{n}.png", pictures[n % len(pictures)])]
                )
                posts.append((message, posted_at))
            replies = await emulator.wait_for(lambda: _all_answered(emulator, posts), 180, "every answer complete")
            figures = [await _figures(proc, emulator, posts, replies, before[proc.name]) for proc in processes]
    for row in figures:
        row["configuration"] = label
    return figures


def _all_answered(emulator: DiscordEmulator, posts: list[tuple[Message, float]]) -> dict[int, list[Message]] | None:
    by_question: dict[int, list[Message]] = {}
    for message in emulator.world.messages.values():
        if message.reference_id is not None and message.author.id == emulator.bot_user.id:
            by_question.setdefault(message.reference_id, []).append(message)
    done = all(
        any(reply.content.strip() == ANSWER.strip() for reply in by_question.get(post.id, ())) for post, _ in posts
    )
    return by_question if done else None


def _shown_at(reply: Message, shown: Callable[[str], bool]) -> float:
    return next(revision.at for revision in reply.revisions if shown(revision.content))


async def _figures(
    proc: Process,
    emulator: DiscordEmulator,
    posts: list[tuple[Message, float]],
    replies: dict[int, list[Message]],
    before: Samples,
) -> dict[str, object]:
    mine = [(post, at) for post, at in posts if post.channel_id in proc.channels]
    first_words = [_shown_at(replies[p.id][0], lambda text: ANSWER[:CHUNK] in text) - at for p, at in mine]
    full = [_shown_at(replies[p.id][0], lambda text: text.strip() == ANSWER.strip()) - at for p, at in mine]
    stamps = [
        r.at for r in emulator.requests
        if any(f"/channels/{channel}/" in r.path + "/" for channel in proc.channels)
    ]
    limited = [r for r in emulator.requests if r.status == 429 and any(str(c) in r.path for c in proc.channels)]
    lag = lag_figures(before, await proc.metrics())
    rss, peak_rss = proc.memory()
    return {
        "process": proc.name, "shards": ",".join(map(str, proc.shards)), "questions": len(mine),
        "once": all(len(replies[p.id]) == 1 for p, _ in mine),
        "lag_p50": lag[0], "lag_p99": lag[1], "lag_max": lag[2], "rss": rss, "peak_rss": peak_rss,
        "peak_rps": peak_per_second(stamps), "429": len(limited),
        "words_p50": percentile(first_words, 0.5), "words_p99": percentile(first_words, 0.99),
        "full_p50": percentile(full, 0.5), "full_p99": percentile(full, 0.99),
    }


async def run(questions: int, seconds: float, runs: int) -> list[str]:
    layouts = {
        "one process, both shards": [("both", (0, 1))],
        "two processes, one shard each": [("shard-0", (0,)), ("shard-1", (1,))],
    }
    results: dict[tuple[str, str], list[dict[str, object]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        with redis_server(logs) as (redis_url, _):
            for run_number in range(runs):
                for db, (label, layout) in enumerate(layouts.items()):
                    url = f"{redis_url.rsplit('/', 1)[0]}/{db + 2 * run_number}"
                    log.info("run %d: %s", run_number + 1, label)
                    for row in await one_configuration(label, layout, questions, seconds, url, logs):
                        results.setdefault((label, str(row["process"])), []).append(row)
    lines = [
        f"Machine: {machine(f'discord.py {discord.__version__}', f'openai {openai.__version__}')}; "
        "the emulator, the VLM server and the bench share it with the bot processes.",
        f"{questions} image questions (640x480 PNG) in {seconds:.0f} s over {SERVERS * CHANNELS_PER_SERVER} "
        f"describe channels in {SERVERS} servers on {SHARDS} shards; the model plays {FIRST_TOKEN:.0f} s to the "
        f"first token, then {CHUNK} characters every {CHUNK_DELAY * 1000:.0f} ms ({len(ANSWER)} characters). "
        f"Median of {runs} run(s) per figure; lag in ms, RSS in MiB, times in seconds from the post.",
        "",
        "| configuration | process (shards) | loop lag p50 / p99 / max | RSS (peak) | Discord req/s at peak "
        "| 429s | first words p50 / p99 | full answer p50 / p99 | answered once |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (label, name), rows in results.items():
        def mid(key: str, rows: list[dict[str, object]] = rows) -> float:
            return statistics.median(float(row[key]) for row in rows)  # type: ignore[arg-type]

        once = all(bool(row["once"]) for row in rows)
        lines.append(
            f"| {label} | {name} ({rows[0]['shards']}) | {mid('lag_p50'):.1f} / {mid('lag_p99'):.1f} / "
            f"{mid('lag_max'):.0f} | {mid('rss'):.0f} ({mid('peak_rss'):.0f}) | {mid('peak_rps'):.0f} | "
            f"{mid('429'):.0f} | {mid('words_p50'):.2f} / {mid('words_p99'):.2f} | "
            f"{mid('full_p50'):.2f} / {mid('full_p99'):.2f} | {'yes' if once else 'NO'} "
            f"({int(mid('questions'))} questions) |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--write-readme", action="store_true", help="store the results in bench/README.md")
    args = parser.parse_args(argv)
    lines = asyncio.run(run(args.questions, args.seconds, args.runs))
    report(lines, write=args.write_readme, key="load", title="Load: several processes", intro=_INTRO)


_INTRO = (
    "`python -m bench.load`: real `python -m bot` processes, one holding both shards and then two with "
    "one shard each, in the same run, through the real clients against the local fakes and a private "
    "redis-server (see the module docstring). Targets: loop lag p99 under 20 ms, no 429, every question "
    "answered once."
)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
