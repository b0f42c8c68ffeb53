"""Pacing bench: live replies against a simulated Discord channel, on simulated time.

Run: ``.venv/bin/python -m bench.pacing [--seconds 60] [--write-readme]``.

A model produces ~30 tokens/s (4 characters each) for ``--seconds`` into one or three concurrent
replies in one channel. The simulated channel accepts 5 requests per 5 s (sliding, by arrival;
each request takes 80 ms there and back) and answers the rest with 429, after which the sender
sleeps ``retry_after`` and retries, as discord.py does. Compared:

* ``LiveReply``: :class:`bot.replies.live.LiveReply` with the shared :class:`bot.replies.pacing.ChannelPacer`;
* ``LiveReply, bursts``: the same with ``min_interval=0`` (uses each window's allowance at once);
* ``naive``: ``await message.edit(text)`` every 10 tokens, 429s left to the library.

Figures: requests, 429s, the largest number of accepted requests in any 5 s, the share of the
allowance used while streaming, and the delay from a token's production to its first visibility
(median, 90th percentile, and for the reply's first token). With ``--write-readme`` the table
replaces the marked block of the Pacing section of bench/README.md (created if absent).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import logging
import random
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import discord

from bench._common import report
from bot.replies import ChannelPacer, LastingSink, LiveReply
from tests.virtual_time import max_in_window, run_virtual

log = logging.getLogger(__name__)

RATE, PER, LATENCY = 5, 5.0, 0.08
TOKENS_PER_SECOND, TOKEN = 30, "word"
NAIVE_EVERY = 10


@dataclass
class SimulatedChannel:
    """Discord's shared per-channel limit as seen from a client that retries after each 429.

    Each way of a request takes ``LATENCY / 2``, or a random time in ``jitter`` when given.
    """

    jitter: tuple[float, float] | None = None
    seed: int = 0
    accepted: list[float] = field(default_factory=list)
    rejected: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _way(self) -> float:
        return LATENCY / 2 if self.jitter is None else self._rng.uniform(*self.jitter)

    async def request(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._way())
            now = loop.time()
            recent = [t for t in self.accepted if t > now - PER]
            if len(recent) < RATE:
                self.accepted.append(now)
                await asyncio.sleep(self._way())
                return
            self.rejected += 1
            await asyncio.sleep(self._way() + recent[-RATE] + PER - now)


@dataclass
class BenchSink(LastingSink):
    """A ReplySink on the simulated channel that records how much text is visible, and when."""

    channel: SimulatedChannel
    channel_id: int = 1
    messages: list[str] = field(default_factory=list)
    visible: list[tuple[float, int]] = field(default_factory=list)  # (time, characters shown)

    def _shown(self) -> None:
        # The bench text is plain (no code blocks), so the messages are exact pieces of its prefix.
        shown = sum(len(m) for m in self.messages if m != "…")
        self.visible.append((asyncio.get_running_loop().time(), shown))

    async def send(self, content: str, *, file: discord.File | None = None) -> None:
        await self.channel.request()
        self.messages.append(content)
        self._shown()

    async def edit(self, index: int, content: str, *, file: discord.File | None = None) -> None:
        await self.channel.request()
        self.messages[index] = content
        self._shown()


@dataclass
class Tokens:
    """The model: token ``i`` is produced at ``start + i / rate``, however late it is read."""

    count: int
    produced: list[tuple[float, int]] = field(default_factory=list)  # (time, text length after it)

    async def __call__(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        start, length = loop.time(), 0
        for i in range(self.count):
            due = start + i / TOKENS_PER_SECOND
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            piece = TOKEN if i == 0 else " " + TOKEN
            length += len(piece)
            self.produced.append((due, length))
            yield piece


async def naive_reply(sink: BenchSink, deltas: AsyncIterator[str]) -> None:
    """What a first version does: edit every N tokens and let the library absorb the 429s."""
    await sink.send("…")
    text, count = "", 0
    async for delta in deltas:
        text, count = text + delta, count + 1
        if count % NAIVE_EVERY == 0:
            await _naive_show(sink, text)
    await _naive_show(sink, text)


async def _naive_show(sink: BenchSink, text: str) -> None:
    chunks = [text[i : i + 2000] for i in range(0, len(text), 2000)]
    for index, chunk in enumerate(chunks):
        if index >= len(sink.messages):
            await sink.send(chunk)
        elif sink.messages[index] != chunk:
            await sink.edit(index, chunk)


def _live(min_interval: float | None) -> Callable[[BenchSink, ChannelPacer, Tokens], Awaitable[None]]:
    async def run(sink: BenchSink, pacer: ChannelPacer, tokens: Tokens) -> None:
        reply = LiveReply(sink, pacer, min_interval=min_interval)
        await reply.stream(tokens())
        await reply.finish()

    return run


async def _naive(sink: BenchSink, pacer: ChannelPacer, tokens: Tokens) -> None:
    await naive_reply(sink, tokens())


STRATEGIES: dict[str, Callable[[BenchSink, ChannelPacer, Tokens], Awaitable[None]]] = {
    "LiveReply": _live(None),
    "LiveReply, bursts": _live(0.0),
    f"naive, edit every {NAIVE_EVERY} tokens": _naive,
}


@dataclass
class Result:
    strategy: str
    replies: int
    requests: int
    rejected: int
    max_per_window: int
    allowance_used: float
    median_delay: float
    p90_delay: float
    first_token_delay: float


def _delays(tokens: Tokens, sink: BenchSink) -> list[float]:
    """For each token: time from its production to the first moment it was visible."""
    times = [t for t, _ in sink.visible]
    shown = [n for _, n in sink.visible]
    best = [max(shown[: i + 1]) for i in range(len(shown))]  # visible text never shrinks here
    delays = []
    for produced_at, length in tokens.produced:
        index = bisect.bisect_left(best, length)
        while index < len(times) and times[index] < produced_at:
            index += 1
        delays.append(times[index] - produced_at)
    return delays


def simulate(strategy: str, replies: int, seconds: float) -> Result:
    async def main() -> tuple[SimulatedChannel, list[BenchSink], list[Tokens], float]:
        channel, pacer = SimulatedChannel(), ChannelPacer(RATE, PER)
        sinks = [BenchSink(channel) for _ in range(replies)]
        streams = [Tokens(int(seconds * TOKENS_PER_SECOND)) for _ in range(replies)]
        run = STRATEGIES[strategy]
        await asyncio.gather(*(run(s, pacer, t) for s, t in zip(sinks, streams, strict=True)))
        return channel, sinks, streams, asyncio.get_running_loop().time()

    channel, sinks, streams, _ = run_virtual(main)
    delays = [d for s, t in zip(sinks, streams, strict=True) for d in _delays(t, s)]
    firsts = [_delays(t, s)[0] for s, t in zip(sinks, streams, strict=True)]
    streaming = [t for t in channel.accepted if t <= seconds]
    return Result(
        strategy=strategy,
        replies=replies,
        requests=len(channel.accepted) + channel.rejected,
        rejected=channel.rejected,
        max_per_window=max_in_window(channel.accepted, PER),
        allowance_used=len(streaming) / (seconds / PER * RATE),
        median_delay=statistics.median(delays),
        p90_delay=statistics.quantiles(delays, n=10)[-1],
        first_token_delay=statistics.mean(firsts),
    )


def table(results: Sequence[Result], seconds: float) -> list[str]:
    lines = [
        f"Simulated: {seconds:.0f} s of {TOKENS_PER_SECOND} tokens/s per reply, one channel limited to "
        f"{RATE} requests per {PER:.0f} s, {LATENCY * 1000:.0f} ms per request, 429 -> sleep retry_after"
        " and retry (discord.py's behaviour). Simulated time: the figures do not depend on the machine.",
        "",
        "| strategy | replies | requests | 429s | max accepted in any 5 s | allowance used "
        "| token visible after, median | p90 | first token visible after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.strategy} | {r.replies} | {r.requests} | {r.rejected} | {r.max_per_window} "
            f"| {r.allowance_used:.0%} | {r.median_delay:.2f} s | {r.p90_delay:.2f} s "
            f"| {r.first_token_delay:.2f} s |"
        )
    return lines


MARGINS = (0.0, 0.1, 0.25, 0.5)
JITTER = (0.02, 0.3)


def margin_trial(margin: float, stamp_completion: bool, requests: int = 120) -> tuple[int, float]:
    """Three callers sending back to back through one pacer over a jittery link: (429s, requests/5 s)."""

    async def main() -> tuple[int, float]:
        channel, pacer = SimulatedChannel(jitter=JITTER, seed=7), ChannelPacer(RATE, PER, margin=margin)

        async def caller() -> None:
            for _ in range(requests // 3):
                if stamp_completion:
                    async with pacer.slot(1):
                        await channel.request()
                else:  # the baseline: a slot that completes at its grant, the request sent after it
                    async with pacer.slot(1):
                        pass
                    await channel.request()

        await asyncio.gather(caller(), caller(), caller())
        elapsed = asyncio.get_running_loop().time()
        return channel.rejected, len(channel.accepted) / elapsed * PER

    return run_virtual(main)


def margin_table() -> list[str]:
    lines = [
        "",
        f"Safety margin, measured: three callers sending back to back through one pacer over a link whose "
        f"every way takes {JITTER[0] * 1000:.0f}-{JITTER[1] * 1000:.0f} ms (uniform), 120 requests; "
        "429s and accepted requests per 5 s.",
        "",
        "| stamped at | " + " | ".join(f"margin {m:g} s" for m in MARGINS) + " |",
        "|---|" + "---:|" * len(MARGINS),
    ]
    for stamp_completion, label in ((False, "grant (baseline)"), (True, "completion (`slot`, used)")):
        cells = []
        for margin in MARGINS:
            rejected, throughput = margin_trial(margin, stamp_completion)
            cells.append(f"{rejected} x 429, {throughput:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


_SECTION_INTRO = (
    "`bench/pacing.py` streams model output into live replies against a simulated Discord channel "
    "(5 requests per 5 s shared by the channel, 429 answered by sleeping `retry_after` and retrying, "
    "as discord.py does) on simulated time, and compares `LiveReply` with the shared `ChannelPacer` "
    "against a naive \"edit every 10 tokens\" loop. *Token visible after* is the time from the "
    "model producing a token to the first successful edit that shows it. Refresh with "
    "`.venv/bin/python -m bench.pacing --write-readme`."
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each simulated stream")
    parser.add_argument("--write-readme", action="store_true", help="store the results in bench/README.md")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = [simulate(name, replies, args.seconds) for replies in (1, 3) for name in STRATEGIES]
    lines = table(results, args.seconds) + margin_table()
    report(lines, write=args.write_readme, key="pacing", title="Pacing", intro=_SECTION_INTRO)


if __name__ == "__main__":
    main()
