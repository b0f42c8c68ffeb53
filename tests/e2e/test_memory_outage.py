"""The store goes away under a running bot: answers still come, say why they forgot, and nothing crashes.

The bot's store is a private redis-server that the test stops mid-conversation (a real outage: the
connection is refused), the way a shared Redis restarting under several bot processes looks.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Glimpse
from bot.conversation import MEMORY_UNAVAILABLE
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_bot_pinged_nobody,
    emulator_config,
    paced_like_emulator,
)
from tests.e2e.test_conversation import RED, Talk, history_of
from tests.e2e.test_memory_over_time import talk  # noqa: F401  (fixture)
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer
from tests.store.conftest import redis_server


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def settings_env(
    emulator: DiscordEmulator, vlm: VLMServer, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> dict[str, str]:
    return bot_environment(emulator, vlm, private_redis[0])


async def test_a_question_is_answered_without_memory_when_the_store_is_down(
    talk: Talk,  # noqa: F811
    glimpse: Glimpse,
    emulator: DiscordEmulator,
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    await talk.ask(bob, general, "the codeword is PELICAN; what is this?", attachments=[RED], answer="A red square.")
    await emulator.post_message(bob, general, "and my wallpaper", attachments=[RED])

    _, server = private_redis
    server.terminate()
    server.wait(timeout=10)

    reply, request = await talk.ask(alice, general, "what is 2 + 2?", answer="Four.")
    assert [(m.text, m.images) for m in history_of(request)] == [("alice: what is 2 + 2?", ())]
    content = await emulator.wait_for_content(reply, lambda text: MEMORY_UNAVAILABLE in text)
    assert content.startswith("Four.")

    # /context cannot tell, and says so briefly; the bot is still there for the next question
    assert "went wrong" in await talk.command(alice, general, "context")
    reply, _ = await talk.ask(alice, general, "and 3 + 3?", answer="Six.")
    assert "Six." in reply.content
    assert_bot_pinged_nobody(emulator)
