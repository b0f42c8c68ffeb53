"""End-to-end fixtures: the real Glimpse bot, the Discord emulator and the VLM server, all in one loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.app import Glimpse
from bot.settings import Settings
from tests.e2e.helpers import REFUSALS_MARK, assert_discord_refused_nothing, declared_refusals
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, World, standard_world
from tests.fakes.vlm import VLMServer

BotFactory = Callable[..., Glimpse]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{REFUSALS_MARK}(*refusals): (status, code) pairs Discord may answer because the test provokes them",
    )


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Override in a test module (or parametrize) to tune the emulator's rules."""
    return EmulatorConfig()


@pytest.fixture
def emulator_world() -> World:
    """Override in a test module to start the emulator with another world."""
    return standard_world()


@pytest.fixture
async def emulator(
    emulator_world: World, emulator_config: EmulatorConfig, request: pytest.FixtureRequest
) -> AsyncIterator[DiscordEmulator]:
    """The emulator; at teardown (after the bot stopped) it checks that Discord refused nothing undeclared."""
    async with DiscordEmulator(world=emulator_world, config=emulator_config) as server:
        yield server
        assert_discord_refused_nothing(server, allow=declared_refusals(request.node))


def bot_environment(emulator: DiscordEmulator, vlm: VLMServer, store_url: str, **extra: str) -> dict[str, str]:
    """The environment a Glimpse process needs to run against the two fakes."""
    return {
        **emulator.environment(),
        "VLM_API_KEY": vlm.api_key,
        "VLM_BASE_URL": vlm.base_url,
        # the standard world's #images, unless the test names its own describe channels
        "DESCRIBE_CHANNEL_IDS": extra.pop("DESCRIBE_CHANNEL_IDS", None) or str(emulator.channel("images").id),
        "STORE_URL": store_url,
        "DISCORD_MEDIA_HOSTS": emulator.base_url,  # link previews and stickers come from the emulator's proxy
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
