"""OCR: `/ocr` and the "Extract text" message menu; the flow itself lives in `bot/ocr/transcribe.py`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import permit
from bot.guard import Admission, MeteredVision, Purpose
from bot.guild import Feature
from bot.moderation.discord import FLAGGED_IMAGE, flagged_earlier
from bot.ocr import LocalOcrEngine
from bot.ocr.transcribe import OcrOptions, OcrServices, OfflineReader, transcribe_attachments

if TYPE_CHECKING:
    from bot.app import Glimpse

log = logging.getLogger(__name__)

NO_IMAGES = "That message has no images I can read."


class Ocr(commands.Cog):
    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot
        # Built once; the language data loads on first use, in the reader's own thread.
        self.offline = OfflineReader(LocalOcrEngine())
        self.menu = app_commands.ContextMenu(name="Extract text", callback=self.extract_text)
        bot.tree.add_command(self.menu)

    async def cog_load(self) -> None:
        # The first check imports tesserocr (loads libtesseract): not on the event loop.
        if await asyncio.to_thread(self.offline.available):
            log.info("Offline OCR engine available (/ocr engine:local, and the fallback when the model fails)")
        else:
            log.info("Offline OCR engine unavailable: %s", self.offline.why_unavailable)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.offline.close()

    def services(self, admission: Admission) -> OcrServices:
        bot = self.bot
        return OcrServices(
            vision=MeteredVision(admission, bot.vision),
            images=bot.images,
            pacer=bot.pacer,
            offline=self.offline,
            downloads=bot.downloads,
            live=bot.live,
            note=lambda channel_id, about, message_id: bot.chat.note_replies(channel_id, about, [message_id]),
        )

    @app_commands.command(name="ocr", description="Copy the text out of an image, exactly as written.")
    @app_commands.describe(
        image="The image to read",
        language="The language of the text, if you know it (a hint for reading; nothing is translated)",
        engine="model (default) or local: the offline engine, which needs the bot's ocr extra installed",
        layout="plain text, or markdown to keep headings, lists and tables",
    )
    async def ocr_command(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        language: app_commands.Range[str, 1, 40] | None = None,
        engine: Literal["model", "local"] = "model",
        layout: Literal["plain", "markdown"] = "plain",
    ) -> None:
        if not await permit(self.bot.server_settings, interaction, Feature.OCR):
            return
        if engine == "local" and not self.offline.available():
            await interaction.response.send_message(self.offline.why_unavailable, ephemeral=True)
            return
        admission = await self.bot.gate.admit(interaction, Purpose.OCR)
        if admission is None:
            return
        await interaction.response.defer(thinking=True)
        options = OcrOptions(language=language, engine=engine, layout=layout, asker_id=interaction.user.id)
        await transcribe_attachments(self.bot.reply_sink(interaction), [image], options, self.services(admission))

    async def extract_text(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if not await permit(self.bot.server_settings, interaction, Feature.OCR):
            return
        found = await self.bot.media.images(message)
        if not found.sources:
            await interaction.response.send_message(" ".join([NO_IMAGES, *found.notes_when_empty()]), ephemeral=True)
            return
        admission = await self.bot.gate.admit(interaction, Purpose.OCR)
        if admission is None:
            return
        await interaction.response.defer(thinking=True)
        if await flagged_earlier(message, found.sources, self.bot.moderation):  # after the defer: it may ask the model
            await interaction.edit_original_response(content=FLAGGED_IMAGE)
            return
        options = OcrOptions(asker_id=interaction.user.id, about=message.id)
        await transcribe_attachments(self.bot.reply_sink(interaction), found.sources, options, self.services(admission))


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(Ocr(bot))
