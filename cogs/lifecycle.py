"""Deleted messages: a live reply whose message someone deletes stops at once, upstream request included.

Raw events, because the bot's message cache may not hold the reply (and need not: the registry
knows it by id). Deleting anything else, such as the question a reply answers, changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from bot.app import Glimpse


class ReplyLifecycle(commands.Cog):
    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.bot.live.deleted(payload.message_id)

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for message_id in payload.message_ids:
            self.bot.live.deleted(message_id)


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(ReplyLifecycle(bot))
