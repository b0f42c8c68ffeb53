"""`/usage`: (only you see it) your token use today and this month and what is left; with Manage
Server, the server's totals per feature, its top members and an estimated cost; a 30-day chart."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.gate import actor_of
from bot.guard import Prices, Purpose, usage_report
from bot.interactions import acknowledge

if TYPE_CHECKING:
    from bot.app import Glimpse

log = logging.getLogger(__name__)

CHART_FILE = "usage.png"


class Usage(commands.Cog):
    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot
        settings = bot.settings
        prompt, completion = settings.price_prompt_per_mtok, settings.price_completion_per_mtok
        self.prices = Prices(prompt or 0.0, completion or 0.0) if prompt is not None or completion is not None else None

    @app_commands.command(name="usage", description="Your token use today and this month (only you see it).")
    async def usage_command(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction)
        # Checked here from the member's permissions in this server, not only by who sees a button.
        manager = interaction.guild is not None and interaction.permissions.manage_guild
        actor = actor_of(interaction.user, interaction.guild, Purpose.CHAT)
        text, chart = await usage_report(self.bot.guard, actor, manager=manager, prices=self.prices)
        await interaction.edit_original_response(
            content=text[:2000],
            attachments=[discord.File(io.BytesIO(chart), filename=CHART_FILE)],
            allowed_mentions=discord.AllowedMentions.none(),
        )


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(Usage(bot))
