"""Budget bench: what the guard's budget check costs per model request, with SQLite and with Redis.

Run: ``.venv/bin/python -m bench.budget [--requests 300] [--write-readme]`` (Redis half needs
``redis-server`` on PATH).

The same streamed request (a short prompt, a four-word answer from the fake VLM server on loopback)
is sent three ways, interleaved in one run so that load and warm-up hit all alike (the fake server
runs in a process of its own, like a remote provider): bare (``VisionClient.stream``), and through
the guard with each store (``Guard.admit`` -> ``MeteredVision``: the server's limits read from their
cache, one admission step (meters checked, rate counted), one atomic reservation before sending,
one settlement after). Each is timed whole (the guarded stream's close waits for its settlement)
and until its last word (what a member waits for: the settlement runs while the reply shows it).
The guard's three store steps are also timed alone, without the request. Figures are medians.
Targets (issue 11): the check under 1 ms with SQLite, under 2 ms with Redis on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from bench._common import machine, median, report
from bot.guard import (
    Actor,
    Admission,
    Guard,
    Limits,
    MeteredVision,
    Purpose,
    Refusal,
    Spent,
    estimate_prompt,
)
from bot.guild import Defaults, GuildSettingsService
from bot.store import Store, open_store
from bot.vlm import VisionClient
from tests.fakes.vlm import VLMServer

log = logging.getLogger(__name__)

MESSAGES = [{"role": "user", "content": "What colour is the sky in this picture?"}]
MEMBERS = 50
"""Requests come from this many members of one server in turns, so each member's rate window holds a
few events (at most the six ``RATE_USER_PER_MINUTE`` allows, in the bot), not the whole run's."""
ACTORS = itertools.cycle([Actor(Purpose.CHAT, user_id=20 + n, guild_id=10) for n in range(MEMBERS)])
SQLITE_TARGET_MS, REDIS_TARGET_MS = 1.0, 2.0


@dataclass(frozen=True)
class Provider:
    base_url: str
    api_key: str
    model: str


def _serve(conn: Connection) -> None:
    """The fake VLM server in a process of its own; sends its address, serves until told to stop."""

    async def run() -> None:
        async with VLMServer() as vlm:
            vlm.respond_with(lambda request: "A clear blue sky.")
            conn.send(Provider(vlm.base_url, vlm.api_key, vlm.model))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(run())


@contextlib.contextmanager
def provider_process() -> Iterator[Provider]:
    """The fake VLM server in another process, as a provider is: neither its event loop nor the GIL
    is shared with the bot's side, which is what the bench times."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(theirs,), daemon=True)
    process.start()
    try:
        if not ours.poll(30):
            raise RuntimeError("the fake VLM server did not start")
        yield ours.recv()
    finally:
        ours.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()


@contextlib.asynccontextmanager
async def stores(directory: Path) -> AsyncIterator[dict[str, Store]]:
    """A SQLite store, and a Redis one when redis-server is installed."""
    opened = {"SQLite": await open_store(f"sqlite:///{directory / 'bench.db'}")}
    with contextlib.ExitStack() as stack:
        try:
            from tests.store.conftest import redis_server

            url, _ = stack.enter_context(redis_server(directory))
            opened["Redis"] = await open_store(url)
        except BaseException as error:  # pytest.skip raises a BaseException when redis-server is missing
            if isinstance(error, KeyboardInterrupt):
                raise
            log.warning("Redis half skipped: %s", error)
        try:
            yield opened
        finally:
            for store in opened.values():
                await store.close()


def unlimited_guard(store: Store) -> Guard:
    """Every limit on but far away, so each request does every step and none is refused; the
    server's own limits come from its settings record through their cache, as in the bot."""
    limits = Limits(rate_user_per_minute=10**9, user_daily=10**12, guild_daily=10**12)
    max_tokens = {purpose: 100 for purpose in Purpose}
    server_settings = GuildSettingsService(store, Defaults())
    return Guard(store, limits, max_tokens=max_tokens, server_limits=server_settings.limits)


async def admitted(guard: Guard) -> Admission:
    admission = await guard.admit(next(ACTORS))
    assert not isinstance(admission, Refusal), admission
    return admission


async def bare(vision: VisionClient) -> float:
    """One request; returns when its last word came (``perf_counter``)."""
    async with vision.stream(MESSAGES, max_tokens=100) as stream:
        async for _ in stream:
            pass
        return time.perf_counter()


async def guarded(vision: VisionClient, guard: Guard) -> float:
    """The same request through the guard; returns when its last word came. Leaving the stream
    waits for the settlement, which runs while a reply would show the last word."""
    model = MeteredVision(await admitted(guard), vision)
    async with model.stream(MESSAGES, estimate=estimate_prompt(MESSAGES)) as stream:
        async for _ in stream:
            pass
        return time.perf_counter()


async def check_only(guard: Guard) -> None:
    """The guard's store steps for one request, without the request: admit, reserve, settle (with
    usage, as after an answer: the meters and the usage row in one transaction)."""
    reservation = await (await admitted(guard)).reserve(estimate_prompt(MESSAGES) + 100)
    assert not isinstance(reservation, Refusal)
    await reservation.settle(Spent(10, 5))


async def timed(step: Callable[[], Awaitable[float | None]], last_word: list[float] | None = None) -> float:
    """Milliseconds ``step`` took; with ``last_word``, also until the moment it returned is appended."""
    started = time.perf_counter()
    moment = await step()
    ended = time.perf_counter()
    if last_word is not None and moment is not None:
        last_word.append((moment - started) * 1000)
    return (ended - started) * 1000


async def measure(requests: int) -> list[str]:
    for noisy in ("httpx", "bot.vlm.client"):  # a line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, provider_process() as vlm:
        async with stores(Path(tmp)) as opened:
            vision = VisionClient(api_key=vlm.api_key, base_url=vlm.base_url, model=vlm.model)
            guards = {name: unlimited_guard(store) for name, store in opened.items()}
            times: dict[str, list[float]] = {"bare": [], "bare word": []}
            for name in guards:
                times |= {f"guarded {name}": [], f"guarded {name} word": [], f"check {name}": []}
            try:
                for _ in range(10):  # warm-up: connections, scripts, statements
                    await bare(vision)
                    for guard in guards.values():
                        await guarded(vision, guard)
                for _ in range(requests):
                    times["bare"].append(await timed(lambda: bare(vision), times["bare word"]))
                    for name, guard in guards.items():
                        words = times[f"guarded {name} word"]
                        times[f"guarded {name}"].append(await timed(lambda g=guard: guarded(vision, g), words))
                        times[f"check {name}"].append(await timed(lambda g=guard: check_only(g)))
            finally:
                await vision.aclose()
    return lines(times, requests, list(guards))


def lines(times: dict[str, list[float]], requests: int, backends: Sequence[str]) -> list[str]:
    base, base_word = median(times["bare"]), median(times["bare word"])
    out = [
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end. {requests} requests per "
        "path, interleaved, after 10 warm-up rounds; fake VLM server (own process) and Redis on loopback.",
        "",
        "| path | median ms per request | added by the guard | added until the last word "
        "| its store steps alone | target (added) |",
        "|---|---:|---:|---:|---:|---|",
        f"| bare request (no guard) | {base:.2f} | - | - | - | - |",
    ]
    for name in backends:
        target = SQLITE_TARGET_MS if name == "SQLite" else REDIS_TARGET_MS
        request = median(times[f"guarded {name}"])
        added = request - base
        word = median(times[f"guarded {name} word"]) - base_word
        verdict = "met" if added < target else "NOT met"
        out.append(
            f"| guarded, {name} store | {request:.2f} | {added:+.2f} | {word:+.2f} "
            f"| {median(times[f'check {name}']):.2f} | under {target:g} ms: {verdict} |"
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.requests))
    report(
        result,
        write=args.write_readme,
        key="budget",
        title="Budget check",
        intro=(
            "`bench/budget.py` sends the same streamed request bare and through the guard (admit, an atomic "
            "reservation, a settlement) with each store, interleaved in one run, and times the guard's store "
            "steps alone. Refresh with `.venv/bin/python -m bench.budget --write-readme`."
        ),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    main()
