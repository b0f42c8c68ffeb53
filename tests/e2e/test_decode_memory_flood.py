"""Fifty large PNGs at once (small files that each need 31 MB to prepare) stay under the decode memory budget,
and every one is answered or refused with a reason.

The fifty ``/describe`` commands are spread over ten channels, because answers in one channel share its
edit bucket (5 per window) and would otherwise be paced one after the other; the emulator's windows are
scaled to one second (``tests/e2e/helpers.py``).
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image

from bot.app import Glimpse
from bot.images.codec import decoded_bytes
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (
    PLACEHOLDER,
    WARNING,
    assert_discord_refused_nothing,
    )
from tests.fakes.discord import DiscordEmulator, Interaction, World, standard_world
from tests.fakes.vlm import VLMServer
from tests.unit import image_corpus as corpus

pytestmark = pytest.mark.timeout(120)
MEMORY_MB = 32
CHANNELS = 10


@pytest.fixture
def emulator_world() -> World:
    world = standard_world()
    lab = world.guild_named("Glimpse Lab")
    for index in range(CHANNELS):
        world.add_text_channel(lab, f"flood-{index}")
    return world


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    # Fifty requests from one member: the spending limits (rate, daily budget) are not what this is about.
    return bot_environment(
        emulator,
        vlm,
        f"sqlite:///{tmp_path / 'glimpse.db'}",
        IMAGE_MEMORY_MB=str(MEMORY_MB),
        RATE_USER_PER_MINUTE="0",
        BUDGET_USER_DAILY_TOKENS="0",
    )


def answer_of(interaction: Interaction) -> str | None:
    original = interaction.original
    content = original.content if original is not None else ""
    return content if content and content != PLACEHOLDER else None


async def test_fifty_large_pngs_at_once_stay_under_the_memory_budget_and_are_all_answered(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.respond_with(lambda request: "A large plain picture.")
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 2000), (40, 100, 150)).save(buffer, "PNG")
    large = buffer.getvalue()  # 16 MB decoded (Pillow keeps RGB in 4 bytes a pixel), under 100 KB
    huge = corpus.png_claiming_size(8000, 8000)  # 64 megapixels: refused from its header
    files = [large] * 46 + [huge] * 4
    assert max(len(data) for data in files) < 100_000
    bob = emulator.user("bob")
    channels = [emulator.channel(f"flood-{index}") for index in range(CHANNELS)]

    interactions = await asyncio.gather(*(
        emulator.run_slash_command(bob, channels[i % CHANNELS], "describe", {"image": (f"big{i}.png", data)})
        for i, data in enumerate(files)
    ))
    await emulator.wait_for(lambda: all(answer_of(i) for i in interactions), timeout=90, what="fifty answers")

    texts = [answer_of(i) for i in interactions]
    assert texts[:46] == ["A large plain picture."] * 46
    assert all(t is not None and t.startswith(WARNING) and "too large" in t for t in texts[46:]), texts[46:]
    memory = glimpse.images.memory
    assert memory.max_bytes == MEMORY_MB * 2**20
    # Each holds 31 MB (16 MB decoded, 15 MB for the resize's first pass) of the 32: one at a time.
    assert decoded_bytes(large) <= memory.peak <= memory.max_bytes
    assert memory.in_use == 0 and memory.holders == 0
    assert len(vlm.completions) == 46
    assert_discord_refused_nothing(emulator)
