"""Nobody spends without limit: over a daily budget or the per-minute rate a member gets one short line
(ephemeral for commands) saying which limit and when it resets, and the model receives nothing; the
budget is back the next UTC day; an exempt role is not limited."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.app import Glimpse
from bot.guard.limits import next_midnight
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    SettledRequests,
    emulator_config,
    paced_like_emulator,
    reply_to,
)
from tests.fakes.discord import DiscordEmulator, Interaction
from tests.fakes.vlm import VLMServer

LONG_ANSWER = "The picture shows a quiet harbour at dawn with boats. " * 40  # ~540 completion tokens


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    # One answer of ~700 tokens uses up a 400-token budget; its reservation (estimate + 50) fits.
    return bot_environment(
        emulator,
        vlm,
        f"sqlite:///{tmp_path / 'glimpse.db'}",
        BUDGET_USER_DAILY_TOKENS="400",
        CHAT_MAX_TOKENS="50",
        RATE_USER_PER_MINUTE="3",
    )


async def ask(emulator: DiscordEmulator, user: str, prompt: str, channel: str = "general") -> Interaction:
    where = emulator.channel(channel)
    interaction = await emulator.run_slash_command(emulator.user(user), where, "ask", {"prompt": prompt})
    return await emulator.wait_for_response(interaction)


async def test_a_member_over_the_daily_budget_is_told_privately_and_the_model_gets_nothing_until_midnight(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    settled = SettledRequests(glimpse)
    vlm.script(LONG_ANSWER)
    await ask(emulator, "bob", "What is in the harbour?")
    await settled.wait(1)
    [request] = vlm.completions
    assert request.body["max_tokens"] == 50
    assert request.usage is not None and request.usage.prompt_tokens + request.usage.completion_tokens >= 400

    refused = await ask(emulator, "bob", "And the boats?")
    assert refused.ephemeral and refused.callback_types == [4]  # answered at once, only bob sees it
    midnight = int(next_midnight(time.time()))
    assert refused.callbacks[0].data["content"] == (
        "You have used your daily token budget in this server (400 tokens). "
        f"It resets at midnight UTC (<t:{midnight}:R>)."
    )
    assert len(vlm.completions) == 1  # the model received nothing
    exposition = glimpse.metrics.render()[0].decode()
    assert 'glimpse_budget_refusals_total{feature="chat",limit="member"} 1.0' in exposition

    # carol has her own budget (asked elsewhere: here the long answer in memory would not fit it)
    other = await ask(emulator, "carol", "Is it dawn?", channel="images")
    await emulator.wait_for_content(other.original, lambda text: "I see" in text)
    assert len(vlm.completions) == 2

    glimpse.guard.clock = lambda: midnight + 1.0  # the next UTC day
    again = await ask(emulator, "bob", "And the boats?", channel="images")
    assert not again.ephemeral
    await emulator.wait_for_content(again.original, lambda text: "I see" in text)
    assert len(vlm.completions) == 3


async def test_a_member_asking_too_fast_is_told_once_per_limit_and_the_mentions_are_not_sent(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, general = emulator.user("bob"), emulator.channel("general")
    mention = f"<@{emulator.bot_user.id}>"
    for n in range(3):  # RATE_USER_PER_MINUTE=3: mentions and commands count alike
        posted = await emulator.post_message(bob, general, f"{mention} question {n}")
        answer = await reply_to(emulator, posted)
        await emulator.wait_for_content(answer, lambda text: "I see" in text)
    fourth = await emulator.post_message(bob, general, f"{mention} question 3")
    notice = await reply_to(emulator, fourth)
    assert notice.content.startswith("Slow down a little: at most 3 requests a minute. Try again <t:")
    fifth = await emulator.post_message(bob, general, f"{mention} question 4")
    command = await ask(emulator, "bob", "question 5")
    assert command.ephemeral and command.callbacks[0].data["content"].startswith("Slow down a little")
    assert [m for m in emulator.bot_messages(general) if m.reference_id == fifth.id] == []  # told once already
    assert len(vlm.completions) == 3


async def settings_limits(emulator: DiscordEmulator, user: str, **options: object) -> str:
    """``user`` runs ``/settings limits`` with ``options``; its ephemeral answer."""
    interaction = await emulator.run_slash_command(
        emulator.user(user), emulator.channel("general"), "settings limits", options
    )
    await emulator.wait_for_response(interaction)
    assert interaction.ephemeral  # /settings acknowledges privately at once, then edits its answer in
    await emulator.wait_for(lambda: interaction.original is not None and interaction.original.content)
    assert interaction.original is not None
    return interaction.original.content


async def test_an_exempt_role_is_not_limited(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    lab = emulator.guild("Glimpse Lab")
    moderator = next(role for role in lab.roles.values() if role.name == "Moderator")
    answer = await settings_limits(emulator, "alice", **{"exempt-role": moderator})  # alice: Manage Server
    assert answer == f"Saved: limits: <@&{moderator.id}> exempt."
    settled = SettledRequests(glimpse)
    vlm.respond_with(lambda request: LONG_ANSWER)
    for n in range(4):  # past the rate (3 a minute) and the daily budget (400 tokens) of other members
        interaction = await ask(emulator, "alice", f"question {n}")
        assert not interaction.ephemeral
        await emulator.wait_for_content(interaction.original, lambda text: text.startswith("The picture shows"))
    assert len(vlm.completions) == 4
    await ask(emulator, "bob", "question", channel="images")  # bob is not exempt: one answer uses his budget
    await settled.wait(5)
    refused = await ask(emulator, "bob", "again")
    assert refused.ephemeral and refused.callbacks[0].data["content"].startswith("You have used")
    assert len(vlm.completions) == 5


async def test_a_server_lowers_its_members_budget_within_the_deployments(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    refused = await settings_limits(emulator, "alice", **{"member-daily": 500})  # the deployment: 400
    assert refused == "Not saved: the deployment allows at most 400 tokens per member a day."
    assert await settings_limits(emulator, "alice", **{"member-daily": 100}) == "Saved: limits: member-daily 100."
    shown = await settings_limits(emulator, "alice")
    assert shown.startswith("Per member: 100 tokens a day (server) · whole server: 1,000,000 tokens a day (deployment)")
    refused_ask = await ask(emulator, "bob", "What is in the harbour?")  # its reservation needs more than 100
    await emulator.wait_for_content(refused_ask.original, lambda text: "needs more than the 100 tokens left" in text)
    assert vlm.completions == []
