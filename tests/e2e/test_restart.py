"""Memory survives a crash: `python -m bot` killed with SIGKILL after answering, then started again.

The bot runs as a real subprocess against the in-process Discord emulator and VLM server, with its
store in the test's tmp_path (SQLite) or in a real redis-server (skipped with a reason where none is
installed). Nothing is closed gracefully: the second process must find the first one's turns and
image bytes in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import open_store
from tests.e2e.conftest import bot_environment
from tests.e2e.test_conversation import RED, SIZE, history_of
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer
from tests.store.conftest import redis_url, store_url  # noqa: F401  (fixtures: a fresh SQLite file or Redis db)

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0  # a cold `python -m bot` imports discord.py, openai and Pillow on a shared machine
ANSWER_TIMEOUT = 15.0  # the bot paces its sends and edits like Discord's 5 per 5 s


@contextlib.asynccontextmanager
async def bot_process(
    env: dict[str, str], workdir: Path, log: Path, *args: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot [args]` with ``env``; killed (SIGKILL) on exit if it is still running."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args, env=env, cwd=workdir, stdout=stderr, stderr=stderr
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def wait_for_turns(url: str, channel_id: int, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until ``count`` turns of the channel are committed to the store at ``url``.

    Read through a second connection from this process, as another bot process would. A live edit
    can show the whole answer before the exchange is stored, and nothing signals a commit across
    processes, so this polls (every 20 ms, up to a deadline) as the fakes' own waits do.
    """
    store = await open_store(url)
    try:
        async with asyncio.timeout(timeout):
            while len(await store.history(channel_id)) < count:  # noqa: ASYNC110  (no event crosses processes)
                await asyncio.sleep(0.02)
    finally:
        await store.close()


async def test_memory_survives_sigkill_and_restart(
    emulator: DiscordEmulator,
    vlm: VLMServer,
    tmp_path: Path,
    store_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    env = {
        **os.environ,
        **bot_environment(emulator, vlm, store_url),
        "PYTHONPATH": str(REPO),
        "LOG_LEVEL": "INFO",
    }
    log = tmp_path / "bot.log"
    alice, general = emulator.user("alice"), emulator.channel("general")
    mention = f"<@{emulator.bot_user.id}>"
    first_answer = "A plain red rectangle. Codeword noted: PELICAN."
    vlm.script(Script(text=first_answer, chunk_size=len(first_answer)))

    async with bot_process(env, tmp_path, log) as first:
        await emulator.wait_until_connected(timeout=STARTUP_TIMEOUT)
        asked = await emulator.post_message(
            alice, general, f"{mention} the codeword is PELICAN; what is this?", attachments=[RED]
        )
        reply = await emulator.wait_for_message(general, after=asked, timeout=ANSWER_TIMEOUT)
        await emulator.wait_for_content(reply, lambda text: first_answer in text, timeout=ANSWER_TIMEOUT)
        # the answer is on screen; once the exchange is committed, the process dies without any cleanup
        await wait_for_turns(store_url, general.id, 2)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    await emulator.wait_for(lambda: not emulator.gateway.connected_sessions, what="first bot gone")

    vlm.script("It was red, and the codeword is PELICAN.")
    async with bot_process(env, tmp_path, log) as second:
        await emulator.wait_until_connected(timeout=STARTUP_TIMEOUT)
        asked = await emulator.post_message(alice, general, f"{mention} what colour, and which codeword?")
        reply = await emulator.wait_for_message(general, after=asked, timeout=ANSWER_TIMEOUT)
        [_, request] = await vlm.wait_for_requests(2)
        await emulator.wait_for_content(reply, lambda text: "PELICAN" in text, timeout=ANSWER_TIMEOUT)
        assert second.returncode is None, log.read_text()

    assert [(m.role, m.text, m.images) for m in history_of(request)] == [
        ("user", "alice: the codeword is PELICAN; what is this?", (SIZE[RED],)),
        ("assistant", first_answer, ()),
        ("user", "alice: what colour, and which codeword?", ()),
    ], log.read_text()
    assert len(emulator.gateway.identify_payloads) == 2
