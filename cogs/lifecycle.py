"""Deleted messages: a live reply whose message someone deletes stops at once, upstream request included.

Raw events, because the bot's message cache may not hold the reply (and need not: the registry
knows it by id). Deleting anything else, such as the question a reply answers, changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.live_registry import LIVE_REPLIES, LiveRegistry

if TYPE_CHECKING:
    from bot.client import Glimpse


class ReplyLifecycle(commands.Cog):
    def __init__(self, bot: Glimpse, registry: LiveRegistry = LIVE_REPLIES) -> None:
        self.bot = bot
        self.registry = registry

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.registry.deleted(payload.message_id)

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        for message_id in payload.message_ids:
            self.registry.deleted(message_id)


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(ReplyLifecycle(bot))
