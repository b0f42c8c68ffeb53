"""`/usage` (ephemeral) shows the tokens the VLM server's ``usage`` reported: a member their own today
and this month with what is left; Manage Server also the server's totals per feature, the top members
and the estimated cost; with a 30-day chart that is a valid PNG."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.app import Glimpse
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    SettledRequests,
    emulator_config,
    paced_like_emulator,
    png,
)
from tests.fakes.discord import DiscordEmulator, Interaction
from tests.fakes.vlm import VLMServer


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    return bot_environment(
        emulator,
        vlm,
        f"sqlite:///{tmp_path / 'glimpse.db'}",
        BUDGET_USER_DAILY_TOKENS="50000",
        PRICE_PROMPT_PER_MTOK="1000",
        PRICE_COMPLETION_PER_MTOK="2000",
    )


async def usage(emulator: DiscordEmulator, user: str) -> Interaction:
    interaction = await emulator.run_slash_command(emulator.user(user), emulator.channel("general"), "usage")
    await emulator.wait_for(lambda: interaction.original is not None and interaction.original.attachments)
    return interaction


async def test_usage_shows_what_the_model_service_reported_and_a_chart(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    settled = SettledRequests(glimpse)
    bob, general = emulator.user("bob"), emulator.channel("general")
    await emulator.run_slash_command(bob, general, "describe", {"image": ("a.png", png())})
    await emulator.run_slash_command(bob, general, "ask", {"prompt": "and the sea?"})
    await settled.wait(2)
    [describe] = [request.usage for request in vlm.completions if request.images]
    [chat] = [request.usage for request in vlm.completions if not request.images]
    assert describe is not None and chat is not None
    total = describe.prompt_tokens + describe.completion_tokens + chat.prompt_tokens + chat.completion_tokens

    mine = await usage(emulator, "bob")
    assert mine.ephemeral and mine.original is not None
    lines = mine.original.content.splitlines()
    assert lines[:3] == [
        "**Your use in this server**",
        f"Today: {total:,} tokens (2 requests) · this month: {total:,} tokens (2 requests)",
        f"Your daily budget here: {total:,} of 50,000 tokens used today, {50_000 - total:,} left",
    ]
    assert "**This server**" not in mine.original.content  # bob may not manage the server
    [chart] = mine.original.attachments
    image = Image.open(io.BytesIO(chart.data))
    assert (chart.filename, image.format, image.size) == ("usage.png", "PNG", (640, 260))
    image.verify()

    server = await usage(emulator, "alice")  # Moderator: Manage Server
    text = server.original.content
    assert f"Today: {total:,} tokens (2 requests) · this month: {total:,} tokens (2 requests)" in text.split(
        "**This server**"
    )[1]
    chat_tokens = chat.prompt_tokens + chat.completion_tokens
    describe_tokens = describe.prompt_tokens + describe.completion_tokens
    assert f"This month by feature: chat {chat_tokens:,} · describe {describe_tokens:,}" in text
    assert f"Top members this month: <@{bob.id}> {total:,}" in text
    prompt = describe.prompt_tokens + chat.prompt_tokens
    completion = describe.completion_tokens + chat.completion_tokens
    cost = (prompt * 1000 + completion * 2000) / 1_000_000
    assert f"Estimated cost this month: ${cost:,.2f}" in text
    assert not any(record.pinged_anyone for record in emulator.records.mentions)
