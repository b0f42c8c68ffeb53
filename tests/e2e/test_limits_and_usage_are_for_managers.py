"""Spending limits are the managers' business, checked by the bot itself: a member without Manage Server
is refused `/settings limits` even where an admin lets everyone see `/settings`, and their `/usage`
has no server section (no server totals, features, top members or cost). The check follows the
permissions Discord resolved for the interaction: a role that just lost Manage Server loses both at
once, before the role update reaches the bot's cache."""

from __future__ import annotations

from bot.app import Glimpse
from bot.guild.policy import NEEDS_MANAGE_SERVER
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    SettledRequests,
    emulator_config,
    paced_like_emulator,
)
from tests.e2e.server_settings import answer_of, run_settings, stored_version
from tests.e2e.test_usage_command import settings_env  # noqa: F401  (fixture: a budget and prices)
from tests.fakes.discord import DiscordEmulator, Interaction, Perm, Role
from tests.fakes.vlm import VLMServer

SERVER_SECTION = ("**This server**", "This month by feature", "Top members this month", "Estimated cost")


def moderator_role(emulator: DiscordEmulator) -> Role:
    return next(r for r in emulator.guild().roles.values() if r.name == "Moderator")


async def usage(emulator: DiscordEmulator, user: str) -> Interaction:
    interaction = await emulator.run_slash_command(emulator.user(user), emulator.channel("general"), "usage")
    await emulator.wait_for(lambda: interaction.original is not None and interaction.original.attachments)
    return interaction


async def ask(emulator: DiscordEmulator, user: str, prompt: str) -> None:
    interaction = await emulator.run_slash_command(
        emulator.user(user), emulator.channel("general"), "ask", {"prompt": prompt}
    )
    await emulator.wait_for_response(interaction)
    await emulator.wait_for_content(interaction.original, lambda text: "I see" in text)


async def test_a_member_without_manage_server_is_refused_settings_limits_and_nothing_changes(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, guild, moderators = emulator.user("bob"), emulator.guild(), moderator_role(emulator)
    emulator.set_command_permission("settings", guild, True)  # an admin shows /settings to everyone
    for options in ({}, {"member-daily": 10}, {"server-daily": 10}, {"exempt-role": moderators}):
        refused = await run_settings(emulator, bob, "limits", options)
        assert answer_of(refused) == NEEDS_MANAGE_SERVER  # without options: not even what is in force
        assert "50,000" not in refused.original.content
    assert await stored_version(glimpse, emulator) == 0
    assert (await glimpse.server_settings.limits(guild.id)).exempt_role_ids == frozenset()

    # alice's role loses Manage Server; the bot has not heard yet (its cache still says she has it)
    emulator.set_role_permissions(moderators, moderators.permissions & ~Perm.MANAGE_GUILD, dispatch=False)
    bot_guild = glimpse.get_guild(guild.id)
    assert bot_guild is not None and bot_guild.get_role(moderators.id).permissions.manage_guild  # type: ignore[union-attr]
    refused = await run_settings(emulator, emulator.user("alice"), "limits", {"member-daily": 10})
    assert answer_of(refused) == NEEDS_MANAGE_SERVER
    assert await stored_version(glimpse, emulator) == 0

    owner = await run_settings(emulator, emulator.user("lab-owner"), "limits", {"member-daily": 10})  # may
    assert answer_of(owner) == "Saved: limits: member-daily 10."
    assert (await glimpse.server_settings.limits(guild.id)).user_daily == 10
    assert len(vlm.completions) == 0


async def test_a_plain_members_usage_shows_only_their_own(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    settled = SettledRequests(glimpse)
    await ask(emulator, "alice", "What is in the harbour?")
    await ask(emulator, "bob", "And the boats?")
    await settled.wait(2)
    alice_id = emulator.user("alice").id

    mine = await usage(emulator, "bob")
    assert mine.ephemeral and mine.original is not None
    text = mine.original.content
    assert text.startswith("**Your use in this server**\nToday: ")
    assert "(1 request)" in text  # bob's one request, not the server's two
    assert not [part for part in SERVER_SECTION if part in text]
    assert f"<@{alice_id}>" not in text and "$" not in text

    server = await usage(emulator, "alice")  # Moderator: Manage Server
    assert all(part in server.original.content for part in SERVER_SECTION)
    assert mine.original.attachments[0].data != server.original.attachments[0].data  # bob's chart: his own

    # the Moderator role loses Manage Server; the bot's cache has not heard yet
    moderators = moderator_role(emulator)
    emulator.set_role_permissions(moderators, moderators.permissions & ~Perm.MANAGE_GUILD, dispatch=False)
    demoted = (await usage(emulator, "alice")).original.content
    assert not [part for part in SERVER_SECTION if part in demoted]
    assert f"<@{emulator.user('bob').id}>" not in demoted
    assert not any(record.pinged_anyone for record in emulator.records.mentions)
