"""Whether a Discord message speaks to the bot: one rule for every cog that listens to messages."""

from __future__ import annotations

import discord

SYNC_SCOPES = ("global", "here", "clear")
"""``@Glimpse sync [global|here|clear]``: everywhere, this server's copies, or remove this server's copies."""


def sync_scope(question: str) -> str | None:
    """The scope when ``question`` (the mention stripped) is exactly the owner's sync command, else None:
    "sync my photos?" is a question like any other, whoever asks."""
    words = question.split()
    if not words or words[0] != "sync" or len(words) > 2:
        return None
    scope = words[1] if len(words) == 2 else "global"
    return scope if scope in SYNC_SCOPES else None


def addresses_bot(message: discord.Message, bot_user: discord.abc.User | None) -> bool:
    """A DM, a mention of the bot, or a reply to one of the bot's messages (pinging it or not)."""
    if message.guild is None:
        return True
    if bot_user in message.mentions:
        return True
    ref = message.reference.resolved if message.reference else None
    return isinstance(ref, discord.Message) and ref.author == bot_user
