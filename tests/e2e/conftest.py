"""End-to-end fixtures: the real Glimpse bot, the Discord emulator and the VLM server, all in one loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.app import Glimpse
from bot.settings import Settings
from tests.fakes.discord import DiscordEmulator, EmulatorConfig
from tests.fakes.vlm import VLMServer

BotFactory = Callable[..., Glimpse]


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Override in a test module (or parametrize) to tune the emulator's rules."""
    return EmulatorConfig()


@pytest.fixture
async def emulator(emulator_config: EmulatorConfig) -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(config=emulator_config) as server:
        yield server


def bot_environment(emulator: DiscordEmulator, vlm: VLMServer, store_url: str, **extra: str) -> dict[str, str]:
    """The environment a Glimpse process needs to run against the two fakes."""
    return {
        **emulator.environment(),
        "VLM_API_KEY": vlm.api_key,
        "VLM_BASE_URL": vlm.base_url,
        "DESCRIBE_CHANNEL_IDS": str(emulator.channel("images").id),
        "STORE_URL": store_url,
        **extra,
    }


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    """Override or extend in a test to change the bot's configuration."""
    return bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'glimpse.db'}")


@pytest.fixture
async def glimpse(emulator: DiscordEmulator, settings_env: dict[str, str]) -> AsyncIterator[Glimpse]:
    """Glimpse logged in to the emulator with its slash commands registered."""
    bot = Glimpse(Settings.from_env(settings_env), sync_commands=True)
    async with emulator.running(bot):
        yield bot
