"""A provider that refuses ``stream_options`` (400): the bot streams without them, and remembers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
)
from tests.e2e.test_describe_faults import TEXT, a_png, post_image
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer(rejects_stream_options=True) as server:
        yield server


async def test_answers_and_stops_sending_stream_options(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.respond_with(lambda request: TEXT)
    first = await post_image(emulator, a_png())
    await emulator.wait_for_content(first, lambda text: text == TEXT)
    second = await post_image(emulator, a_png())
    await emulator.wait_for_content(second, lambda text: text == TEXT)

    assert [r.status for r in vlm.completions] == [400, 200, 200]  # refused once, then remembered
    assert ["stream_options" in r.body for r in vlm.completions] == [True, False, False]
    assert_discord_refused_nothing(emulator)
