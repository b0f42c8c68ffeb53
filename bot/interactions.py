"""Private answers to an interaction that may have been deferred: acknowledge before slow work, then
say the result in the same place whichever way the interaction was first answered.

Discord allows 3 seconds for the first response; anything that waits on the store acknowledges first.
"""

from __future__ import annotations

import discord

from bot.replies import NO_MENTIONS


async def acknowledge(interaction: discord.Interaction) -> None:
    """Defer (privately, "thinking") unless the interaction is already answered."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


async def say_privately(interaction: discord.Interaction, text: str, *, embed: discord.Embed | None = None) -> None:
    """One private answer: the response itself, or the deferred response edited in."""
    extras = {} if embed is None else {"embed": embed}
    if interaction.response.is_done():
        await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS, **extras)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS, **extras)
