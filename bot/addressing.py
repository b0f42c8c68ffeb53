"""Whether a Discord message speaks to the bot: one rule for every cog that listens to messages."""

from __future__ import annotations

import discord


def addresses_bot(message: discord.Message, bot_user: discord.abc.User | None) -> bool:
    """A DM, a mention of the bot, or a reply to one of the bot's messages (pinging it or not)."""
    if message.guild is None:
        return True
    if bot_user in message.mentions:
        return True
    ref = message.reference.resolved if message.reference else None
    return isinstance(ref, discord.Message) and ref.author == bot_user
