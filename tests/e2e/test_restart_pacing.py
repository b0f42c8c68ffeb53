"""A restart right after an answer causes no 429: the new process assumes each channel's window may
still be in use by the one that died.

The first `python -m bot` streams a long answer (its sends and edits fill the channel's window of 5 per
5 s), is killed with SIGKILL the moment the answer is complete, and a second process starts at once and
answers three questions asked together. Discord still counts the first process's edits; without the
cold start the second process's placeholders would overflow the channel's shared bucket.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.e2e.test_restart import ANSWER_TIMEOUT, REPO, STARTUP_TIMEOUT, bot_process
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer

pytestmark = pytest.mark.timeout(90)

WORDS = tuple(f"word{n} " for n in range(100))


async def test_a_process_started_right_after_a_sigkill_gets_no_429(
    emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'glimpse.db'}"),
        "PYTHONPATH": str(REPO),
    }
    log = tmp_path / "bot.log"
    alice, general = emulator.user("alice"), emulator.channel("general")
    mention = f"<@{emulator.bot_user.id}>"
    first_answer = "".join(WORDS).strip()
    # Ten seconds of words: an edit whenever the pacer allows, also after the first message waited for a
    # slot (the process counts every window as used for one window after its start).
    vlm.script(Script(chunks=WORDS, delay=0.1))

    async with bot_process(env, tmp_path, log) as first:
        await emulator.wait_until_connected(timeout=STARTUP_TIMEOUT)
        asked = await emulator.post_message(alice, general, f"{mention} count for me")
        reply = await emulator.wait_for_message(general, after=asked, timeout=ANSWER_TIMEOUT)
        await emulator.wait_for_content(reply, lambda text: text.strip() == first_answer, timeout=ANSWER_TIMEOUT)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    await emulator.wait_for(lambda: not emulator.gateway.connected_sessions, what="first bot gone")
    sends_and_edits = [r for r in emulator.requests if r.route.startswith("/channels/{channel_id}/messages")]
    assert len(sends_and_edits) >= 5, "the first answer should have filled the channel's window"

    vlm.script(*(f"Answer {n}." for n in range(3)))
    async with bot_process(env, tmp_path, log) as second:
        await emulator.wait_until_connected(timeout=STARTUP_TIMEOUT)
        # three people at once: three placeholders and their answers in the channel the first process just used
        asked = [
            await emulator.post_message(emulator.user(name), general, f"{mention} question from {name}")
            for name in ("alice", "bob", "carol")
        ]
        replies = [
            await emulator.wait_for_message(general, lambda m, q=q: m.reference_id == q.id, timeout=ANSWER_TIMEOUT)
            for q in asked
        ]
        await emulator.wait_for(
            lambda: sorted(r.content for r in replies) == [f"Answer {n}." for n in range(3)], timeout=ANSWER_TIMEOUT
        )
        assert second.returncode is None, log.read_text()

    assert emulator.rate_limits == [], log.read_text()
    assert_discord_refused_nothing(emulator)
