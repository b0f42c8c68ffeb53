"""Discord events as the plain facts :mod:`bot.guild` decides on, and the one-line refusal of an interaction.

Who is asking (their roles, whether they have Manage Server) and where (guild channel, thread, DM):
every cog asks ``bot.server_settings`` through these, so no cog re-implements a rule. Manage Server is taken
from what Discord resolved for this interaction (``interaction.permissions``) or computed from the
cached roles and overwrites for a message: checked on the server side, whatever a command's default
permissions say.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.guild import Decision, Feature, GuildSettingsService, Member, Place

log = logging.getLogger(__name__)


def place_of(channel: Any) -> Place:
    """Where ``channel`` is: a DM, a guild channel, or a thread (and whether the bot opened it)."""
    guild = getattr(channel, "guild", None)
    if guild is None:
        return Place(channel.id)
    if isinstance(channel, discord.Thread):
        me = getattr(guild, "me", None)
        own = me is not None and channel.owner_id == me.id
        return Place(channel.id, guild.id, parent_id=channel.parent_id, bot_thread=own)
    return Place(channel.id, guild.id)


def member_of(user: discord.abc.User, permissions: discord.Permissions | None = None) -> Member:
    """``user`` as the access rules see them; ``permissions``: theirs where they act (else none)."""
    roles = frozenset(role.id for role in getattr(user, "roles", ()))
    return Member(user.id, roles, manages_guild=bool(permissions and permissions.manage_guild))


def message_member(message: discord.Message) -> Member:
    permissions = None
    if isinstance(message.author, discord.Member):
        permissions = message.channel.permissions_for(message.author)  # type: ignore[union-attr]
    return member_of(message.author, permissions)


async def decide_message(guilds: GuildSettingsService, message: discord.Message, feature: Feature) -> Decision:
    """May the author of ``message`` use ``feature`` where they posted it? (Refusals stay quiet.)"""
    return await guilds.decide(message_member(message), place_of(message.channel), feature)


async def decide_interaction(
    guilds: GuildSettingsService, interaction: discord.Interaction, feature: Feature
) -> Decision:
    """May the invoker use ``feature`` where they invoked it? (Their permissions as Discord resolved them.)"""
    member = member_of(interaction.user, interaction.permissions)
    return await guilds.decide(member, place_of(interaction.channel), feature)


async def permit(guilds: GuildSettingsService, interaction: discord.Interaction, feature: Feature) -> bool:
    """Whether the invoker may use ``feature`` here; if not, they get one short ephemeral line."""
    decision = await decide_interaction(guilds, interaction, feature)
    if decision.allowed:
        return True
    log.info("Refused %s to user %s in channel %s: %s", feature, interaction.user.id, interaction.channel_id,
             decision.reason)
    try:
        await interaction.response.send_message(decision.reason, ephemeral=True)
    except discord.HTTPException:
        log.warning("Could not tell user %s why they were refused", interaction.user.id, exc_info=True)
    return False
