"""A graceful stop (SIGTERM, as systemd or `docker stop` send) loses no answer in progress."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from bot.store import open_store
from tests.e2e.conftest import bot_environment
from tests.e2e.test_conversation import RED
from tests.e2e.test_restart import ANSWER_TIMEOUT, REPO, STARTUP_TIMEOUT, bot_process
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer

pytestmark = pytest.mark.timeout(90)


async def test_sigterm_lets_the_answer_in_progress_finish_and_be_remembered(
    emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'glimpse.db'}"
    env = {**os.environ, **bot_environment(emulator, vlm, store_url), "PYTHONPATH": str(REPO)}
    alice, general = emulator.user("alice"), emulator.channel("general")
    answer = "A plain red rectangle, finished although the bot was asked to stop."
    vlm.script(Script(text=answer, chunk_size=6, gated=True))

    async with bot_process(env, tmp_path, tmp_path / "bot.log") as bot:
        await emulator.wait_until_connected(timeout=STARTUP_TIMEOUT)
        asked = await emulator.post_message(
            alice, general, f"<@{emulator.bot_user.id}> what is this?", attachments=[RED]
        )
        reply = await emulator.wait_for_message(general, after=asked, timeout=ANSWER_TIMEOUT)
        await vlm.wait_for_requests(1)
        await vlm.release(1)
        await emulator.wait_for_content(reply, lambda text: answer[:6] in text, timeout=ANSWER_TIMEOUT)

        bot.send_signal(signal.SIGTERM)  # mid-answer
        await vlm.release(len(answer))  # the model goes on while the bot is stopping
        assert await asyncio.wait_for(bot.wait(), ANSWER_TIMEOUT) == 0, (tmp_path / "bot.log").read_text()

    assert reply.content == answer  # the user saw the whole answer, not a cut-off one
    store = await open_store(store_url)
    try:
        turns = await store.history(general.id)
    finally:
        await store.close()
    assert [(turn.role, turn.text) for turn in turns] == [("user", "what is this?"), ("assistant", answer)]
