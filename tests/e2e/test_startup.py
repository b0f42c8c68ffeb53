"""`python -m bot` as an admin runs it: a refused intent and a bad token give plain log lines."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import UNAUTHORIZED
from tests.e2e.test_restart import ANSWER_TIMEOUT, REPO, STARTUP_TIMEOUT, bot_process
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, GatewayConfig
from tests.fakes.vlm import VLMServer

pytestmark = pytest.mark.timeout(90)


def environment(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    store_url = f"sqlite:///{tmp_path / 'glimpse.db'}"
    return {**os.environ, **bot_environment(emulator, vlm, store_url, **extra), "PYTHONPATH": str(REPO)}


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(gateway=GatewayConfig(message_content_granted=False))


async def test_without_the_message_content_intent_the_bot_warns_and_still_answers_mentions(
    emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    vlm.script("Still here, through mentions.")
    async with bot_process(environment(emulator, vlm, tmp_path), tmp_path, log):
        await emulator.wait_until_connected(timeout=STARTUP_TIMEOUT)
        bob, general = emulator.user("bob"), emulator.channel("general")
        asked = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> are you there?")
        reply = await emulator.wait_for_message(general, after=asked, timeout=ANSWER_TIMEOUT)
        await emulator.wait_for_content(reply, lambda text: "Still here" in text, timeout=ANSWER_TIMEOUT)

    text = log.read_text()
    assert "Discord refused the Message Content intent" in text
    assert "Privileged Gateway Intents" in text  # says where to switch it on
    assert "Traceback" not in text
    [accepted] = emulator.gateway.identify_payloads  # the first IDENTIFY was refused with 4014
    assert not accepted["intents"] & (1 << 15)  # the session runs without Message Content


@pytest.mark.discord_refuses(UNAUTHORIZED)
async def test_a_bad_token_stops_with_a_plain_message_that_does_not_show_it(
    emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    bad_token = "MTIzNDU2Nzg5.bad-token-value.for-this-test"
    env = environment(emulator, vlm, tmp_path, DISCORD_TOKEN=bad_token)
    async with bot_process(env, tmp_path, log) as bot:
        assert await asyncio.wait_for(bot.wait(), STARTUP_TIMEOUT) == 1

    text = log.read_text()
    assert "Discord rejected DISCORD_TOKEN" in text
    assert bad_token not in text and vlm.api_key not in text
    assert "Traceback" not in text
