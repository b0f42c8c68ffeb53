"""Settings bench: what asking "may this member use this here?" costs each message, cached and not.

Run: ``.venv/bin/python -m bench.settings [--decisions 2000] [--runs 5] [--write-readme]``.

Every message in every channel asks :class:`bot.guild.GuildSettingsService` what the channel does
(and whether its author may use the bot). Measured: the time per decision for a server with a
realistic record (40 channel settings, 30 access rules, a persona), through the service's read cache
(the bot's way: one store read per guild per ``CACHE_SECONDS``) and with the cache off (every
decision reads and parses the record: the baseline), on SQLite (a file in a temporary directory) and,
where ``redis-server`` is installed, a private Redis on 127.0.0.1. Median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from bench._common import machine, median, report
from bot.guild import ChatMode, Defaults, Feature, GuildSettings, GuildSettingsService, Member, Place, RoleRule
from bot.store import Store, open_store

log = logging.getLogger(__name__)

GUILD = 1_000_000_000_000_000
CHANNELS = [GUILD + n for n in range(1, 41)]
ROLES = [GUILD + 100 + n for n in range(30)]


def realistic_record() -> GuildSettings:
    settings = GuildSettings().with_persona("You are the friendly helper of the Photo Club. " * 10)
    for n, channel in enumerate(CHANNELS):
        settings = settings.with_describe(channel, n % 2 == 0).with_chat(channel, list(ChatMode)[n % 4])
    for n, role in enumerate(ROLES):
        settings = settings.with_role_rule(role, RoleRule.ALLOW if n % 3 else RoleRule.BLOCK)
    return settings


async def time_decisions(store: Store, *, cached: bool, decisions: int) -> float:
    """Microseconds per decision, over ``decisions`` messages spread over the record's channels."""
    service = GuildSettingsService(store, Defaults(), cache_seconds=3600.0 if cached else 0.0)
    member = Member(42, frozenset(ROLES[1:4]))
    await service.decide(member, Place(CHANNELS[0], GUILD), Feature.CHAT)  # warm: connection, first read
    started = time.perf_counter()
    for n in range(decisions):
        await service.decide(member, Place(CHANNELS[n % len(CHANNELS)], GUILD), Feature.CHAT)
    return (time.perf_counter() - started) / decisions * 1e6


@contextlib.asynccontextmanager
async def backends(directory: Path) -> AsyncIterator[list[tuple[str, str]]]:
    """(name, store URL) for SQLite and, where installed, a private redis-server."""
    found = [("SQLite", f"sqlite:///{directory / 'bench.db'}")]
    if shutil.which("redis-server") is None:
        log.info("redis-server not installed: Redis not measured")
        yield found
        return
    from tests.store.conftest import redis_server

    with redis_server(directory) as (url, _):
        yield [*found, ("Redis", url)]


async def measure(decisions: int, runs: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        async with backends(Path(tmp)) as stores:
            for name, url in stores:
                async with await open_store(url) as store:
                    await store.set_guild_settings(GUILD, "server", realistic_record().to_dict())
                    uncached = [await time_decisions(store, cached=False, decisions=decisions) for _ in range(runs)]
                    cached = [await time_decisions(store, cached=True, decisions=decisions) for _ in range(runs)]
                rows.append(
                    f"| {name} | {median(uncached):,.1f} µs | {median(cached):,.1f} µs"
                    f" | {median(uncached) / median(cached):,.0f}x |"
                )
    return [
        f"Machine: {machine()}. {decisions} decisions per run, median of {runs} runs; the record: 40 channel"
        " settings, 30 role rules, a 480-character persona.",
        "",
        "| store | per decision, no cache (baseline) | per decision, cached (the bot) | cache saves |",
        "|---|---:|---:|---:|",
        *rows,
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    lines = asyncio.run(measure(args.decisions, args.runs))
    report(
        lines,
        write=args.write_readme,
        key="settings",
        title="Settings",
        intro=(
            "`bench/settings.py` times the question every message asks (what does this channel do, may this"
            " member use the bot here) through `GuildSettingsService`, with its read cache and without (the"
            " baseline: every decision reads and parses the server's record). Refresh with"
            " `.venv/bin/python -m bench.settings --write-readme`."
        ),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
