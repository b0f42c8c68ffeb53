"""A bot killed mid-answer does not hold a member's budget until midnight: its reservation is a lease.

A real `python -m bot` process reserves a member's request and is killed with SIGKILL while the
model is still streaming (the VLM server holds the stream), so the reservation is never settled. A
second bot on the same store (SQLite or Redis) then refuses the member's next request and `/usage`
shows the dead one's tokens as used; once RESERVATION_LEASE_SECONDS have passed on the guard's
clock, `/usage` shows them free and the request is answered.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from bot.app import Glimpse
from bot.settings import Settings
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import reply_to
from tests.e2e.test_restart import ANSWER_TIMEOUT, REPO, STARTUP_TIMEOUT, bot_process
from tests.e2e.test_usage_command import usage
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer
from tests.store.conftest import redis_url, store_url  # noqa: F401  (fixtures: a fresh SQLite file or Redis db)

pytestmark = pytest.mark.timeout(90)

LEASE = 60.0


async def used_today(emulator: DiscordEmulator) -> int:
    """The tokens of bob's daily budget here that ``/usage`` shows him as used."""
    shown = (await usage(emulator, "bob")).original
    assert shown is not None
    found = re.search(r"Your daily budget here: ([\d,]+) of 1,000 tokens used today", shown.content)
    assert found, shown.content
    return int(found[1].replace(",", ""))


async def test_a_request_cut_off_by_a_crash_frees_the_members_budget_after_the_lease(
    emulator: DiscordEmulator,
    vlm: VLMServer,
    tmp_path: Path,
    store_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    # One request reserves its estimate plus 600 tokens of the member's 1,000: a second does not fit beside it.
    env = bot_environment(
        emulator,
        vlm,
        store_url,
        BUDGET_USER_DAILY_TOKENS="1000",
        CHAT_MAX_TOKENS="600",
        RESERVATION_LEASE_SECONDS=str(LEASE),
    )
    bob, general = emulator.user("bob"), emulator.channel("general")
    mention = f"<@{emulator.bot_user.id}>"
    vlm.script(Script(text="A quiet harbour at dawn, with boats.", chunk_size=8, stall_after=1))

    log = tmp_path / "bot.log"
    async with bot_process({**os.environ, **env, "PYTHONPATH": str(REPO)}, tmp_path, log) as first:
        await emulator.wait_until_connected(timeout=STARTUP_TIMEOUT)
        await emulator.post_message(bob, general, f"{mention} what is in the harbour?")
        await vlm.wait_for(lambda: [r.outcome for r in vlm.completions] == ["stalled"])  # reserved, then sent
        crashed_at = time.time()
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL, log.read_text()
    await emulator.wait_for(lambda: not emulator.gateway.connected_sessions, what="first bot gone")
    vlm.resume()

    second = Glimpse(Settings.from_env(env), sync_commands=True)
    async with emulator.running(second):
        asked = await emulator.post_message(bob, general, f"{mention} and the boats?")
        refused = await reply_to(emulator, asked)
        await emulator.wait_for_content(
            refused, lambda text: "tokens left of your daily token budget in this server (1,000)" in text
        )
        assert len(vlm.completions) == 1  # the model received nothing
        assert await used_today(emulator) > 600  # the dead request's estimate and max_tokens, still held

        second.guard.clock = lambda: time.time() + LEASE  # the dead process's lease lapses
        assert second.guard.clock() >= crashed_at + LEASE
        assert await used_today(emulator) == 0  # /usage shows it free already
        again = await emulator.post_message(bob, general, f"{mention} and the boats?")
        answer = await reply_to(emulator, again)
        await emulator.wait_for_content(answer, lambda text: "I see 0 images." in text, timeout=ANSWER_TIMEOUT)
        assert len(vlm.completions) == 2
