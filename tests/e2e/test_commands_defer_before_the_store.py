"""Commands that read or write the store before their first response defer first: a slow store
(here a real Redis, paused) must not push them past Discord's 3-second acknowledgement deadline."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bot.app import Glimpse
from tests.e2e.conftest import bot_environment
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, InteractionConfig
from tests.fakes.vlm import VLMServer
from tests.store.conftest import redis_url  # noqa: F401  (the fixture)

ACK_DEADLINE = 0.5
PAUSE_MS = 1500  # the store answers nothing for longer than the deadline


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(interactions=InteractionConfig(ack_deadline=ACK_DEADLINE))


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path, redis_url: str) -> dict[str, str]:  # noqa: F811
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return bot_environment(emulator, vlm, redis_url)


@pytest.mark.parametrize("command", ["context", "forget", "moderation show", "moderation stats"])
async def test_a_slow_store_does_not_miss_the_deadline(
    glimpse: Glimpse, emulator: DiscordEmulator, redis_url: str, command: str  # noqa: F811
) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
    used = await emulator.run_slash_command(emulator.user("alice"), emulator.channel("general"), command)
    await emulator.wait_for_response(used)
    assert used.callback_types == [5] and used.ephemeral  # deferred at once
    await emulator.wait_for(lambda: used.original.content or used.original.embeds, timeout=10)
