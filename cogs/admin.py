"""Owner-only maintenance: registering slash commands with Discord on demand, not on every start."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from bot.addressing import sync_scope

if TYPE_CHECKING:
    from bot.app import Glimpse

log = logging.getLogger(__name__)


class Admin(commands.Cog):
    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot

    @commands.command(name="sync")
    async def sync(self, ctx: commands.Context[Glimpse]) -> None:
        """`@Glimpse sync` registers the commands everywhere; `sync here`, as copies in this server only
        (at once); `sync clear` removes this server's copies, so nothing shows twice after a global sync.

        Anything else after "sync" is a question for the chat cog, not this command."""
        assert self.bot.user is not None
        text = ctx.message.content.replace(f"<@{self.bot.user.id}>", "").replace(f"<@!{self.bot.user.id}>", "")
        scope = sync_scope(text.strip())
        if scope is None:
            return
        if not await self.bot.is_owner(ctx.author):
            await ctx.reply("Only the bot's owner can do that.", mention_author=False)
            return
        tree = self.bot.tree
        if scope == "clear" and ctx.guild is not None:
            tree.clear_commands(guild=ctx.guild)
            await tree.sync(guild=ctx.guild)
            text = "Removed this server's copies of the commands; the global ones remain."
        elif scope == "here" and ctx.guild is not None:
            tree.copy_global_to(guild=ctx.guild)
            synced = await tree.sync(guild=ctx.guild)
            text = f"Synced {len(synced)} commands to this server (`sync clear` removes these copies again)."
        else:
            synced = await tree.sync()
            text = f"Synced {len(synced)} commands to every server (global commands can take a while to appear)."
        log.info("Owner %s ran sync %s", ctx.author.id, scope)
        await ctx.reply(text, mention_author=False)


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(Admin(bot))
