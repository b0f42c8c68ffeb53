"""`@Glimpse sync` is the owner's command only in its exact forms; a question that merely starts
with "sync" is answered like any other, and `sync clear` removes this server's command copies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import Glimpse
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    owner = emulator.world.users[emulator.guild("Glimpse Lab").owner_id]
    return {**bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'glimpse.db'}"), "OWNER_IDS": str(owner.id)}


async def ask(emulator: DiscordEmulator, user_name: str, text: str, expect: Callable[[str], bool]) -> str:
    """``user_name`` ("owner": the server owner) mentions the bot with ``text``; its reply once ``expect`` holds."""
    general = emulator.channel("general")
    user = emulator.world.users[emulator.guild().owner_id] if user_name == "owner" else emulator.user(user_name)
    asked = await emulator.post_message(user, general, f"<@{emulator.bot_user.id}> {text}")
    answer = await emulator.wait_for_message(general, after=asked)
    return await emulator.wait_for_content(answer, expect)


@pytest.mark.parametrize("who", ["bob", "owner"])
async def test_a_question_starting_with_sync_is_answered(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, who: str
) -> None:
    vlm.respond_with(lambda request: "Sync them with the cloud app.")
    puts = len(emulator.records.requests_to("PUT", "/applications/{application_id}/commands"))
    await ask(emulator, who, "sync my phone photos: how do I do that?", lambda t: t == "Sync them with the cloud app.")
    assert "sync my phone photos" in vlm.completions[0].prompt
    assert len(emulator.records.requests_to("PUT", "/applications/{application_id}/commands")) == puts
    assert_discord_refused_nothing(emulator)


async def test_sync_clear_removes_this_servers_copies(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    lab = emulator.guild("Glimpse Lab")
    global_names = sorted(c["name"] for c in emulator.world.commands[None])
    await ask(emulator, "owner", "sync here", lambda text: text.startswith("Synced "))
    assert sorted(c["name"] for c in emulator.world.commands[lab.id]) == global_names  # shown twice now

    await ask(emulator, "owner", "sync clear", lambda text: "removed" in text.lower())
    assert emulator.world.commands[lab.id] == []
    assert sorted(c["name"] for c in emulator.world.commands[None]) == global_names
    assert vlm.completions == []
    assert_discord_refused_nothing(emulator)


async def test_the_exact_command_from_someone_else_is_refused_not_answered(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    refusal = "Only the bot's owner can do that."
    await ask(emulator, "bob", "sync clear", lambda text: text == refusal)
    assert vlm.completions == []
    assert_discord_refused_nothing(emulator)
