"""Who is never acted on automatically: members with an exempt role are not even checked, a
moderator's own image is only logged, and a timeout is tried only on a member the bot outranks
(never the owner, nobody whose highest role is not below the bot's): no refused request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Glimpse
from bot.moderation import ButtonAction
from tests.e2e.helpers import assert_discord_refused_nothing
from tests.e2e.test_moderation import (
    SCAM,
    by_purpose,
    click,
    deletes,
    field,
    moderation_requests,
    next_entry,
    picture,
    post_image,
    setup_moderation,
    verdict,
)
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, Role, standard_world
from tests.fakes.discord.state import NO_PERMISSIONS
from tests.fakes.vlm import VLMServer


@pytest.fixture
async def emulator(emulator_config: EmulatorConfig) -> AsyncIterator[DiscordEmulator]:
    """The standard world plus "tom" (role Trusted) and "vera" (role VIP, above the bot's role)."""
    world = standard_world()
    lab = world.guild_named("Glimpse Lab")
    world.add_member(lab, world.add_user("tom"), roles=[world.add_role(lab, "Trusted", NO_PERMISSIONS)])
    vip = world.add_role(lab, "VIP", NO_PERMISSIONS)
    world.move_role(vip, len(lab.roles) + 5)
    world.add_member(lab, world.add_user("vera"), roles=[vip])
    async with DiscordEmulator(world=world, config=emulator_config) as server:
        yield server


def role_named(emulator: DiscordEmulator, name: str) -> Role:
    return next(r for r in emulator.guild("Glimpse Lab").roles.values() if r.name == name)


async def test_an_exempt_role_is_never_checked(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    await setup_moderation(emulator, medium="delete", exempt_role=role_named(emulator, "Trusted"))
    vlm.respond_with(by_purpose(verdict(SCAM)))
    exempt = await post_image(emulator, "tom", picture(500))
    checked = await post_image(emulator, "bob", picture(501))
    await next_entry(emulator)
    await emulator.wait_for(lambda: checked.deleted)
    assert len(moderation_requests(vlm)) == 1 and not exempt.deleted  # tom's image cost nothing
    assert_discord_refused_nothing(emulator)


async def test_a_moderators_image_is_logged_never_acted_on(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator, medium="delete_timeout")
    vlm.respond_with(by_purpose(verdict(SCAM)))
    posted = await post_image(emulator, "alice", picture(502))
    entry = await next_entry(emulator)
    assert "moderator" in field(entry, "Automatic action") and "none" in field(entry, "Automatic action")
    assert not posted.deleted and deletes(emulator) == [] and emulator.records.timeouts == []
    assert_discord_refused_nothing(emulator)


async def test_a_member_above_the_bot_is_deleted_but_not_timed_out(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator, medium="delete_timeout")
    vlm.respond_with(by_purpose(verdict(SCAM)))
    posted = await post_image(emulator, "vera", picture(503))
    entry = await next_entry(emulator)
    await emulator.wait_for(lambda: posted.deleted)
    assert "timeout was not possible" in field(entry, "Automatic action")
    assert emulator.records.requests_to("PATCH", "/guilds/{guild_id}/members/{user_id}") == []
    assert_discord_refused_nothing(emulator)


async def test_the_timeout_button_on_someone_above_the_bot_says_why_without_asking_discord(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)  # log only
    vlm.respond_with(by_purpose(verdict(SCAM)))
    await post_image(emulator, "vera", picture(504))
    entry = await next_entry(emulator)
    clicked = await click(emulator, "lab-owner", entry, ButtonAction.TIMEOUT)  # outranks everyone but the bot cannot
    followup = await emulator.wait_for(lambda: clicked.followups and clicked.followups[0])
    assert "highest role is not below mine" in followup.content
    assert emulator.records.requests_to("PATCH", "/guilds/{guild_id}/members/{user_id}") == []
    assert_discord_refused_nothing(emulator)
