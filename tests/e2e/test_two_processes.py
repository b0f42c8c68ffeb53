"""Two `python -m bot` processes, one shard each (SHARD_IDS=0 and 1 of SHARD_COUNT=2), one redis-server,
one emulator with a server on each shard: the processes behave as one bot.

- an image in each server is described exactly once, by the process that owns the server's shard;
- a conversation continues after its process is killed with SIGKILL and started again;
- a second process started on the same shard answers nothing twice;
- a settings change made through one process is in force in the other at once;
- a member's requests through both processes count once against their per-minute rate.

Which process did the work is read from each one's own `/metrics`; `/healthz` names each one's shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.guard import Work
from bot.store import open_store
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import assert_discord_refused_nothing, png
from tests.e2e.server_settings import answer_of, answered, bot_replies_to, run_settings
from tests.e2e.test_conversation import history_of
from tests.e2e.test_health_and_metrics import get, samples
from tests.e2e.test_restart import ANSWER_TIMEOUT, REPO, STARTUP_TIMEOUT, bot_process, wait_for_turns
from tests.fakes.discord import Channel, DiscordEmulator, World, sharded_world
from tests.fakes.vlm import VLMServer
from tests.store.conftest import free_port, redis_server

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def emulator_world() -> World:
    return sharded_world(2)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with redis_server(tmp_path) as server:
        yield server


class Processes:
    """Starts `python -m bot` for a shard of two, each with its own log and metrics port."""

    def __init__(self, emulator: DiscordEmulator, vlm: VLMServer, store_url: str, tmp_path: Path) -> None:
        describe = ",".join(str(emulator.channel(f"images-{n}").id) for n in (0, 1))
        self.base = {
            **os.environ,
            **bot_environment(emulator, vlm, store_url, DESCRIBE_CHANNEL_IDS=describe, SHARD_COUNT="2"),
            "PYTHONPATH": str(REPO),
        }
        self.tmp_path = tmp_path
        self.emulator = emulator
        self.ports: dict[str, int] = {}
        self.stack = contextlib.AsyncExitStack()

    async def start(self, name: str, shard: int, *args: str) -> asyncio.subprocess.Process:
        port = self.ports[name] = free_port()
        env = {**self.base, "SHARD_IDS": str(shard), "METRICS_PORT": str(port)}
        return await self.stack.enter_async_context(bot_process(env, self.tmp_path, self.log(name), *args))

    def log(self, name: str) -> Path:
        return self.tmp_path / f"{name}.log"

    async def metrics(self, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, _, text = await get(self.ports[name], "/metrics")
        assert status == 200
        return samples(text)

    async def count(self, name: str, metric: str, **labels: str) -> float:
        return (await self.metrics(name)).get((metric, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def processes(
    emulator: DiscordEmulator, vlm: VLMServer, private_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> AsyncIterator[Processes]:
    started = Processes(emulator, vlm, private_redis[0], tmp_path)
    async with started.stack:
        yield started


async def wait_for_sessions(emulator: DiscordEmulator, shard: int, count: int) -> None:
    await emulator.wait_for(lambda: len(emulator.gateway.sessions_on(shard, 2)) == count, STARTUP_TIMEOUT,
                            f"{count} sessions on shard {shard}")


async def test_two_processes_on_two_shards_behave_as_one_bot(
    processes: Processes, emulator: DiscordEmulator, vlm: VLMServer, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    store_url = private_redis[0]
    # alice asks, bob posts the images: nobody comes near a per-member rate
    alice, bob, mention = emulator.user("alice"), emulator.user("bob"), f"<@{emulator.bot_user.id}>"
    await processes.start("north", 0, "--sync")  # registers the slash commands
    first_south = await processes.start("south", 1)
    await wait_for_sessions(emulator, 0, 1)
    await wait_for_sessions(emulator, 1, 1)
    for name, shard in (("north", 0), ("south", 1)):
        status, _, body = await get(processes.ports[name], "/healthz")
        assert (status, body) == (200, f'{{"status": "ok", "shards": "shard {shard} of 2", "problems": []}}')
    assert "shard 1 of 2" in processes.log("south").read_text()

    # an image in each server: described once, by the process that owns its shard
    vlm.respond_with(lambda request: "A teal rectangle.")
    for shard in (0, 1):
        channel = emulator.channel(f"images-{shard}")
        posted = await emulator.post_message(bob, channel, "", attachments=[("teal.png", png())])
        reply = await emulator.wait_for_message(channel, after=posted, timeout=ANSWER_TIMEOUT)
        await emulator.wait_for_content(reply, lambda text: text == "A teal rectangle.", timeout=ANSWER_TIMEOUT)
        assert emulator.bot_messages(channel) == [reply]
    for name in ("north", "south"):
        assert await processes.count(name, "glimpse_model_requests_total", feature="describe", outcome="ok") == 1

    # a conversation in the south continues after its process dies (SIGKILL) and a new one starts
    chat = emulator.channel("chat-1")
    asked = await emulator.post_message(alice, chat, f"{mention} remember the codeword PELICAN")
    reply = await emulator.wait_for_message(chat, after=asked, timeout=ANSWER_TIMEOUT)
    await emulator.wait_for_content(reply, lambda text: text == "A teal rectangle.", timeout=ANSWER_TIMEOUT)
    await wait_for_turns(store_url, chat.id, 2)
    first_south.send_signal(signal.SIGKILL)
    await first_south.wait()
    await wait_for_sessions(emulator, 1, 0)
    await processes.start("south-again", 1)
    await wait_for_sessions(emulator, 1, 1)
    asked = await emulator.post_message(alice, chat, f"{mention} which codeword?")
    reply = await emulator.wait_for_message(chat, after=asked, timeout=ANSWER_TIMEOUT)
    await emulator.wait_for_content(reply, lambda text: text == "A teal rectangle.", timeout=ANSWER_TIMEOUT)
    assert [m.text for m in history_of(vlm.completions[-1])] == [
        "alice: remember the codeword PELICAN",
        "A teal rectangle.",
        "alice: which codeword?",
    ]

    # a second process on the same shard: both receive every event, one of them answers
    await processes.start("south-twin", 1)
    await wait_for_sessions(emulator, 1, 2)
    before = len(vlm.completions)
    asked = await emulator.post_message(alice, chat, f"{mention} and now?")
    reply = await emulator.wait_for_message(chat, after=asked, timeout=ANSWER_TIMEOUT)
    await emulator.wait_for_content(reply, lambda text: text == "A teal rectangle.", timeout=ANSWER_TIMEOUT)
    refused = 0.0
    async with asyncio.timeout(ANSWER_TIMEOUT):
        while refused < 1:
            await asyncio.sleep(0.02)
            refused = sum([await processes.count(n, "glimpse_claims_refused_total", work="reply")
                           for n in ("south-again", "south-twin")])
    assert refused == 1
    assert len(vlm.completions) == before + 1
    assert [m for m in emulator.bot_messages(chat) if m.reference_id == asked.id] == [reply]

    # a settings change made through one of them is in force in the other at once (both had the
    # server's settings cached: each reads them for every message, before claiming it)
    await settings_change(emulator, chat, on=True)
    described = await emulator.post_message(bob, chat, "", attachments=[("teal.png", png())])
    await answered(emulator, vlm, described, "A teal rectangle.", timeout=ANSWER_TIMEOUT)
    await settings_change(emulator, chat, on=False)
    quiet = await emulator.post_message(bob, chat, "", attachments=[("teal.png", png())])
    sentinel = await emulator.post_message(bob, emulator.channel("images-1"), "", attachments=[("s.png", png())])
    await answered(emulator, vlm, sentinel, "A teal rectangle.", timeout=ANSWER_TIMEOUT)
    async with asyncio.timeout(ANSWER_TIMEOUT):  # both processes are past the sentinel, so past `quiet` too
        while await refusals(processes, "south-again", "south-twin") < refused + 2:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    async with await open_store(store_url) as store:
        assert await store.claim(Work.REPLY, str(quiet.id), ttl=60), "a process took the image to describe it"
    assert bot_replies_to(emulator, quiet) == []
    assert_discord_refused_nothing(emulator)


async def test_a_members_requests_through_both_processes_count_once_against_their_rate(
    processes: Processes, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """The rate is per member across servers: two questions, one in each process's server, use it up,
    so a third in either is refused (each process alone has seen fewer than its limit)."""
    processes.base["RATE_USER_PER_MINUTE"] = "2"
    bob, mention = emulator.user("bob"), f"<@{emulator.bot_user.id}>"
    await processes.start("north", 0)
    await processes.start("south", 1)
    await wait_for_sessions(emulator, 0, 1)
    await wait_for_sessions(emulator, 1, 1)
    vlm.respond_with(lambda request: "Noted.")
    for shard in (0, 1):
        channel = emulator.channel(f"chat-{shard}")
        asked = await emulator.post_message(bob, channel, f"{mention} question {shard}")
        reply = await emulator.wait_for_message(channel, after=asked, timeout=ANSWER_TIMEOUT)
        await emulator.wait_for_content(reply, lambda text: text == "Noted.", timeout=ANSWER_TIMEOUT)
    assert len(vlm.completions) == 2

    north = emulator.channel("chat-0")
    asked = await emulator.post_message(bob, north, f"{mention} one more")
    refusal = await emulator.wait_for_message(north, after=asked, timeout=ANSWER_TIMEOUT)
    await emulator.wait_for_content(refusal, lambda text: text.startswith("Slow down a little"), timeout=5)
    assert "at most 2 requests a minute" in refusal.history[-1]
    assert len(vlm.completions) == 2  # the model received nothing more
    assert await processes.count("north", "glimpse_budget_refusals_total", feature="chat", limit="rate") == 1
    assert_discord_refused_nothing(emulator)


async def refusals(processes: Processes, *names: str) -> float:
    """Claims the named processes found taken (each event one of them did not handle)."""
    return sum([await processes.count(n, "glimpse_claims_refused_total", work="reply") for n in names])


async def settings_change(emulator: DiscordEmulator, channel: Channel, *, on: bool) -> None:
    """alice (Manage Server) turns automatic alt text on or off in ``channel`` with /settings."""
    interaction = await run_settings(emulator, emulator.user("alice"), "describe", {"channel": channel, "on": on},
                                     channel=channel)
    assert answer_of(interaction).startswith(f"Automatic alt text is now {'on' if on else 'off'} in")
