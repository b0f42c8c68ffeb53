"""Deleted messages: whoever deletes a message (its author, moderation, a moderator's mod-log button,
a purge), the bot's replies about it go too, an answer still being written is stopped (its model
request closed), and the exchange whose question it was leaves the channel's memory. Deleting one of
the bot's own replies stops that reply at once. See :mod:`bot.replies.withdrawal`. A deleted channel or
thread takes its memory with it (Discord sends no MESSAGE_DELETE for its messages).

Raw events, because the bot's message cache may hold neither the message nor its replies (and need
not: the registry and the store know them by id).
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
        await self.bot.withdrawal.deleted([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self.bot.withdrawal.deleted(sorted(payload.message_ids))

    @commands.Cog.listener()
    async def on_raw_thread_delete(self, payload: discord.RawThreadDeleteEvent) -> None:
        await self.bot.chat.channel_deleted(payload.thread_id)

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        await self.bot.chat.channel_deleted(channel.id)


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(ReplyLifecycle(bot))
