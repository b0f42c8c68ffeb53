"""Owner-only maintenance: registering slash commands with Discord on demand, not on every start."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord.ext import commands

if TYPE_CHECKING:
    from bot.app import Glimpse

log = logging.getLogger(__name__)


class Admin(commands.Cog):
    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot

    @commands.command(name="sync")
    @commands.is_owner()
    async def sync(self, ctx: commands.Context[Glimpse], scope: str = "global") -> None:
        """`@Glimpse sync` registers the commands everywhere; `@Glimpse sync here`, in this server only."""
        if scope == "here" and ctx.guild is not None:
            self.bot.tree.copy_global_to(guild=ctx.guild)
            synced = await self.bot.tree.sync(guild=ctx.guild)
            where = "this server"
        else:
            synced = await self.bot.tree.sync()
            where = "every server (global commands can take a while to appear)"
        log.info("Owner %s synced %d commands (%s)", ctx.author.id, len(synced), scope)
        await ctx.reply(f"Synced {len(synced)} commands to {where}.", mention_author=False)

    async def cog_command_error(self, ctx: commands.Context[Glimpse], error: Exception) -> None:
        if isinstance(error, commands.NotOwner):
            await ctx.reply("Only the bot's owner can do that.", mention_author=False)
        else:
            raise error


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(Admin(bot))
