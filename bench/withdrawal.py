"""Withdrawal bench: what deleting a message costs the bot now that it takes the replies along (issue 15).

Run: ``.venv/bin/python -m bench.withdrawal [--rounds 400] [--write-readme]`` (Redis half needs
``redis-server`` on PATH).

Each store (SQLite file, Redis on loopback) holds the replies of ``--sources`` answered messages (three
bot messages each) and a channel of 200 remembered turns. Timed, interleaved in one run, medians:

- a MESSAGE_DELETE of a message the bot said nothing about (by far the most common: every deletion on
  every server): before, the live registry alone; now :meth:`Withdrawal.deleted` (the registry and one
  store call that finds nothing);
- noting a posted reply message (now: one ``add_replies`` per message), against what the answer path
  did before (one ``cache_set`` of the answer's ids per answer);
- deleting a question whose three-message answer is on record: the store's take, the exchange out of
  memory, three deletes (here a no-op, Discord's own time is not the bot's).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bench._common import machine, median, report
from bench.budget import stores
from bot.conversation import Turn
from bot.replies import ChannelPacer, LiveRegistry, Withdrawal
from bot.store import Store

log = logging.getLogger(__name__)

CHANNEL = 42
REPLIES_PER_ANSWER = 3
_ids = itertools.count(10**17)


async def no_delete(channel_id: int, message_id: int) -> None:
    """Discord's side is not timed: the bot's own cost is."""


async def answered_question(store: Store, question: int | None = None) -> int:
    """A question remembered with its three-message answer noted; its id."""
    question = next(_ids) if question is None else question
    asked = Turn("user", "bob", 1, "what is this?", message_id=question)
    await store.append_exchange(CHANNEL, asked, Turn("assistant", "Glimpse", 0, "A cat."))
    await store.add_replies(question, CHANNEL, [next(_ids) for _ in range(REPLIES_PER_ANSWER)])
    return question


async def fill(store: Store, sources: int) -> None:
    """``sources`` answers on record, the last 100 of them remembered (200 turns)."""
    for source in range(sources - 100):
        await store.add_replies(source, CHANNEL, [next(_ids) for _ in range(REPLIES_PER_ANSWER)])
    for _ in range(100):
        await answered_question(store)


async def timed(step: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await step()
    return (time.perf_counter() - started) * 1000


async def registry_only(live: LiveRegistry, message_id: int) -> None:
    live.deleted(message_id)  # what a deletion cost before


async def measure(rounds: int, sources: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        async with stores(Path(tmp)) as opened:
            live = LiveRegistry()
            pacer = ChannelPacer(10**6, 1.0)  # never waits: the pacing is not what is timed
            withdrawals = {
                name: Withdrawal(store=store, live=live, pacer=lambda: pacer, delete=no_delete)
                for name, store in opened.items()
            }
            for store in opened.values():
                await fill(store, sources)
            times: dict[str, list[float]] = {"registry": []}
            for name in opened:
                for kind in ("unrelated", "note", "cache", "question"):
                    times[f"{kind} {name}"] = []
            for _ in range(rounds):
                times["registry"].append(await timed(lambda: registry_only(live, next(_ids))))
                for name, store in opened.items():
                    withdrawal = withdrawals[name]
                    times[f"unrelated {name}"].append(await timed(lambda w=withdrawal: w.deleted([next(_ids)])))
                    source = next(_ids)
                    times[f"note {name}"].append(
                        await timed(lambda s=store, q=source: s.add_replies(q, CHANNEL, [next(_ids)]))
                    )
                    times[f"cache {name}"].append(
                        await timed(lambda s=store, q=source: s.cache_set("answer-messages", f"{CHANNEL}:{q}",
                                                                          {"ids": [str(next(_ids))]}, ttl=3600))
                    )
                    question = await answered_question(store)
                    times[f"question {name}"].append(await timed(lambda w=withdrawal, q=question: w.deleted([q])))
    return lines(times, rounds, sources, list(opened))


def lines(times: dict[str, list[float]], rounds: int, sources: int, backends: Sequence[str]) -> list[str]:
    out = [
        f"Machine: {machine()}. {rounds} rounds, interleaved; each store holds the replies of {sources:,} "
        f"answered messages ({REPLIES_PER_ANSWER} messages each) and 200 turns in the channel; Redis on loopback.",
        "",
        "| step | store | before (median ms) | now (median ms) |",
        "|---|---|---:|---:|",
    ]
    registry = median(times["registry"])
    for name in backends:
        out += [
            f"| MESSAGE_DELETE of a message with no replies | {name} | {registry:.3f} (registry only) "
            f"| {median(times[f'unrelated {name}']):.3f} |",
            f"| a posted reply message noted | {name} | {median(times[f'cache {name}']):.3f} (one cache write per "
            f"answer) | {median(times[f'note {name}']):.3f} (per message) |",
            f"| deleting a question with a {REPLIES_PER_ANSWER}-message answer (bot side) | {name} | - (not done) "
            f"| {median(times[f'question {name}']):.3f} |",
        ]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    for quiet in ("bot.replies.withdrawal", "bot.store.sqlite"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
    report(
        asyncio.run(measure(args.rounds, args.sources)),
        write=args.write_readme,
        key="withdrawal",
        title="Deleting a message",
        intro=(
            "`bench/withdrawal.py` times what a deletion costs the bot since deleting a message takes the bot's "
            "replies about it along (issue 15), against what the same event cost before, interleaved in one run. "
            "Refresh with `.venv/bin/python -m bench.withdrawal --write-readme`."
        ),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    main()
