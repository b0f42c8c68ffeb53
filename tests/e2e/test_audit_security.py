"""Security audit, end to end: nothing the bot sends pings anyone, secrets stay out of logs, messages
and storage, privileged actions are checked server-side (overwrites and threads included), and
hostile images in a watched channel end as a plain "needs review", never a crash or an action."""

from __future__ import annotations

from bot.client import Glimpse
from bot.moderation import ButtonAction
from tests.e2e.test_moderation import (
    SCAM,
    click,
    deletes,
    moderation_requests,
    next_entry,
    picture,
    post_image,
    running_bot,
    setup_moderation,
    verdict,
)
from tests.fakes.discord import DiscordEmulator, Perm
from tests.fakes.discord.state import Role
from tests.fakes.vlm import VLMServer

COMMANDS_ROUTE = "/applications/{application_id}/commands"


def role(emulator: DiscordEmulator, name: str) -> Role:
    guild = emulator.world.guilds[emulator.channel("general").guild_id]
    return next(r for r in guild.roles.values() if r.name == name)


async def deny_in(emulator: DiscordEmulator, glimpse: Glimpse, channel_name: str, target: Role, deny: Perm) -> None:
    """A channel overwrite denying ``deny`` to ``target``, once the bot's cache has it."""
    channel = emulator.channel(channel_name)
    emulator.set_overwrite(channel, target, deny=deny)
    await emulator.wait_for(
        lambda: any(o.pair()[1].value for o in glimpse.get_channel(channel.id).overwrites.values()),  # type: ignore[union-attr]
        what="the overwrite in the bot's cache",
    )


# --- (c) privileged actions ----------------------------------------------------------------------


async def test_delete_button_follows_an_overwrite_in_the_flagged_channel(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """alice's role may manage messages, but not in #general where the flagged image is; she still may
    in #mod-log where she clicks. The click is judged by the flagged message's channel."""
    await setup_moderation(emulator)
    vlm.script(verdict(SCAM))
    posted = await post_image(emulator, "bob", picture(101))
    entry = await next_entry(emulator)
    await deny_in(emulator, glimpse, "general", role(emulator, "Moderator"), Perm.MANAGE_MESSAGES)

    refused = await click(emulator, "alice", entry, ButtonAction.DELETE)
    assert refused.ephemeral and "Manage Messages" in refused.original.content
    assert deletes(emulator) == [] and not posted.deleted and entry.edit_count == 0


async def test_delete_button_on_a_thread_image_follows_the_parent_overwrite(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)  # #general watched: its threads too
    vlm.script(verdict(SCAM))
    posted = await post_image(emulator, "bob", picture(102), channel="general-thread")
    entry = await next_entry(emulator)
    await deny_in(emulator, glimpse, "general", role(emulator, "Moderator"), Perm.MANAGE_MESSAGES)

    refused = await click(emulator, "alice", entry, ButtonAction.DELETE)
    assert refused.ephemeral and "Manage Messages" in refused.original.content
    assert deletes(emulator) == [] and not posted.deleted


async def test_forget_follows_a_channel_overwrite(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    await deny_in(emulator, glimpse, "general", role(emulator, "Moderator"), Perm.MANAGE_MESSAGES)
    alice = emulator.user("alice")
    refused = await emulator.run_slash_command(alice, emulator.channel("general"), "forget", {})
    await emulator.wait_for_response(refused)
    assert refused.ephemeral and "Manage Messages" in refused.original.content
    allowed = await emulator.run_slash_command(alice, emulator.channel("images"), "forget", {})
    await emulator.wait_for_response(allowed)
    assert "Manage Messages" not in (allowed.original.content or "")


async def test_check_image_follows_a_channel_overwrite(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await deny_in(
        emulator, glimpse, "general", role(emulator, "Moderator"),
        Perm.MANAGE_MESSAGES | Perm.MODERATE_MEMBERS | Perm.MANAGE_GUILD,
    )
    posted = await post_image(emulator, "bob", picture(103))
    refused = await emulator.use_message_command(emulator.user("alice"), posted, "Check image")
    await emulator.wait_for_response(refused)
    assert refused.ephemeral and "Only moderators" in refused.original.content
    assert moderation_requests(vlm) == []


async def test_only_the_owner_can_sync_commands(
    emulator: DiscordEmulator, vlm: VLMServer, settings_env: dict[str, str]
) -> None:
    owner = emulator.user("carol")
    env = {**settings_env, "OWNER_IDS": str(owner.id)}
    async with running_bot(emulator, env):
        bot_id = emulator.bot_user.id
        before = len(emulator.records.requests_to("PUT", COMMANDS_ROUTE))
        for user, where in (("alice", "general"), ("bob", "general-thread")):
            asked = await emulator.post_message(emulator.user(user), emulator.channel(where), f"<@{bot_id}> sync")
            answer = await emulator.wait_for_message(emulator.channel(where), after=asked)
            assert answer.content == "Only the bot's owner can do that."
        assert len(emulator.records.requests_to("PUT", COMMANDS_ROUTE)) == before

        asked = await emulator.post_message(owner, emulator.channel("general-thread"), f"<@{bot_id}> sync")
        answer = await emulator.wait_for_message(emulator.channel("general-thread"), after=asked)
        assert answer.content.startswith("Synced ")
        assert len(emulator.records.requests_to("PUT", COMMANDS_ROUTE)) > before


async def test_timeout_button_needs_the_server_wide_permission(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """Timeout Members is a server-wide permission (Discord ignores it in channel overwrites): a channel
    overwrite that hands it to bob in #general must not let him time carol out through the bot."""
    await setup_moderation(emulator)
    vlm.script(verdict(SCAM))
    await post_image(emulator, "carol", picture(104))
    entry = await next_entry(emulator)
    general = emulator.channel("general")
    emulator.set_overwrite(general, emulator.user("bob"), allow=Perm.MODERATE_MEMBERS)
    await emulator.wait_for(lambda: len(glimpse.get_channel(general.id).overwrites) > 0)  # type: ignore[union-attr]

    refused = await click(emulator, "bob", entry, ButtonAction.TIMEOUT)
    assert refused.ephemeral and "Timeout Members" in refused.original.content
    assert emulator.records.timeouts == [] and entry.edit_count == 0


async def test_a_thread_missing_from_the_cache_is_looked_up_not_guessed(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """After a restart an archived thread is not in the bot's cache: the clicker's permissions are still
    those of the thread (its parent's overwrites), not those of #mod-log where the button is."""
    await setup_moderation(emulator)
    vlm.script(verdict(SCAM))
    posted = await post_image(emulator, "bob", picture(105), channel="general-thread")
    entry = await next_entry(emulator)
    await deny_in(emulator, glimpse, "general", role(emulator, "Moderator"), Perm.MANAGE_MESSAGES)
    guild = glimpse.get_guild(emulator.world.channels[posted.channel_id].guild_id)  # type: ignore[arg-type]
    assert guild is not None
    thread = guild.get_thread(posted.channel_id)
    assert thread is not None
    guild._remove_thread(thread)  # as discord.py forgets archived threads

    refused = await click(emulator, "alice", entry, ButtonAction.DELETE)
    assert refused.ephemeral and "Manage Messages" in refused.original.content
    assert deletes(emulator) == [] and not posted.deleted
