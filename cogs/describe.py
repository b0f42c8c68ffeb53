"""Image descriptions: automatic alt text in chosen channels, `/describe`, and "Describe image"."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import decide_message, permit, place_of
from bot.addressing import addresses_bot
from bot.conversation import AnswerKind, AnswerRef, user_turn
from bot.guard import Admission, MeteredVision, Purpose, Work
from bot.guild import Feature
from bot.images import AttachmentLike, Detail, gather_images, image_attachments
from bot.moderation.discord import FLAGGED_IMAGE, flagged_earlier, withheld
from bot.prompts import ALT_TEXT_SYSTEM, describe_request
from bot.replies import (
    MessageSink,
    OncePerChannel,
    ReplyDeleted,
    ReplySink,
    Wrap,
    missing_reply_permissions,
)

if TYPE_CHECKING:
    from bot.app import Glimpse

log = logging.getLogger(__name__)

NO_IMAGES = "That message has no images I can read."


class Describe(commands.Cog):
    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot
        self._warned = OncePerChannel()  # channels where a missing permission was already logged
        self.menu = app_commands.ContextMenu(name="Describe image", callback=self.describe_message)
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Discord says someone's language only with their interactions: remembered for their alt text."""
        await self.bot.server_settings.locales.remember(interaction.user.id, str(interaction.locale))

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None:
            return
        found = self.bot.media.found(message)
        if not (found.sources or found.notes or found.waiting_for_preview):
            return
        if addresses_bot(message, self.bot.user):
            return  # a question for the bot: the chat cog answers it
        # Quiet when refused: describe off here, or a member who may not use the bot.
        decision = await decide_message(self.bot.server_settings, message, Feature.AUTO_DESCRIBE)
        if not decision.allowed:
            return
        here = await self.bot.server_settings.behaviour(place_of(message.channel))
        if found.waiting_for_preview:  # a link's preview (its image) comes a moment after the message
            found = await self.bot.media.images(message, wait=True)
        skip = here.alt_text.skip_described
        sources = [s for s in found.sources if not (skip and getattr(s, "description", None))]
        if not sources and (found.sources or not found.notes):
            return  # nothing to look at, or every image already carries its poster's description
        if not await self.bot.claims.claim(Work.REPLY, message.id):
            return
        if missing := missing_reply_permissions(message.channel):
            if self._warned.first(message.channel.id, missing):
                log.warning(
                    "No %s in channel %s; its images are not described (said once)",
                    " or ".join(missing), message.channel.id,
                )
            return
        if await withheld(message, self.bot.moderation):
            log.info("Message %s was flagged by moderation: not described", message.id)
            return
        admission = await self.bot.gate.admit(message, Purpose.ALT_TEXT)  # the server pays, not the poster
        if admission is None:
            return
        poster = await self.bot.server_settings.locales.of(message.author.id)  # from their interactions
        style = here.alt_text.system_prompt(poster, str(message.guild.preferred_locale))
        await self.describe(
            MessageSink(message), admission, sources, asker=message.author, message_id=message.id,
            shared_text=message.content, style=style, notes=found.notes_when_empty(),
        )

    @app_commands.command(name="describe", description="Describe an image (alt text), or ask something about it.")
    @app_commands.describe(
        image="The image to describe",
        image2="A second image",
        prompt="What you want to know (default: alt text)",
        detail="How closely to look: low is cheaper, high reads small print",
    )
    async def describe_command(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        image2: discord.Attachment | None = None,
        prompt: app_commands.Range[str, 1, 1000] | None = None,
        detail: Literal["auto", "low", "high"] = "auto",
    ) -> None:
        if not await permit(self.bot.server_settings, interaction, Feature.DESCRIBE):
            return
        admission = await self.bot.gate.admit(interaction, Purpose.DESCRIBE)
        if admission is None:
            return
        await interaction.response.defer(thinking=True)
        attachments = [a for a in (image, image2) if a is not None]
        await self.describe(
            self.bot.reply_sink(interaction), admission, attachments, asker=interaction.user, message_id=interaction.id,
            prompt=prompt, detail=detail, chosen=True, style=await self._style_for(interaction),
        )

    async def describe_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if not await permit(self.bot.server_settings, interaction, Feature.DESCRIBE):
            return
        found = await self.bot.media.images(message)
        if not found.sources:
            await interaction.response.send_message(" ".join([NO_IMAGES, *found.notes_when_empty()]), ephemeral=True)
            return
        admission = await self.bot.gate.admit(interaction, Purpose.DESCRIBE)
        if admission is None:
            return
        await interaction.response.defer(thinking=True)
        if await flagged_earlier(message, found.sources, self.bot.moderation):  # after the defer: it may ask the model
            await interaction.edit_original_response(content=FLAGGED_IMAGE)
            return
        await self.describe(
            self.bot.reply_sink(interaction), admission, found.sources, asker=interaction.user,
            message_id=interaction.id, style=await self._style_for(interaction), notes=found.notes, about=message.id,
        )

    async def _style_for(self, interaction: discord.Interaction) -> str:
        """The alt-text prompt for someone who asked: in their Discord language (for ``auto``)."""
        here = await self.bot.server_settings.behaviour(place_of(interaction.channel))
        guild_locale = interaction.guild_locale and str(interaction.guild_locale)
        return here.alt_text.system_prompt(str(interaction.locale), guild_locale)

    async def describe(
        self,
        sink: ReplySink,
        admission: Admission,
        attachments: Sequence[AttachmentLike],
        *,
        asker: discord.abc.User,
        message_id: int,
        prompt: str | None = None,
        detail: Detail = "auto",
        shared_text: str = "",
        chosen: bool = False,
        style: str = ALT_TEXT_SYSTEM,
        notes: Sequence[str] = (),
        about: int | None = None,
    ) -> None:
        """Placeholder at once, then download, prepare and stream the description into it.

        ``chosen``: the user picked ``attachments`` as images (see :func:`gather_images`); ``style``:
        the system prompt saying in which language and at what length (``AltText.system_prompt``);
        ``notes``: what the message showed that was left out (a link not fetched, a Lottie sticker);
        ``about``: the message described, when it is not the question (a context menu's target): its
        deletion deletes the description. The exchange becomes part of the channel's conversation, so
        follow-up questions can refer to it.
        """
        limit = self.bot.settings.max_images_per_request
        candidates = list(attachments) if chosen else image_attachments(attachments)
        spoiler = any(a.is_spoiler() for a in candidates[:limit])
        ref = AnswerRef(AnswerKind.DESCRIBE if prompt else AnswerKind.ALT_TEXT, message_id, asker.id)
        reply = self.bot.steering.reply(sink, ref, wrap=Wrap.SPOILER if spoiler else None, about=about)
        try:
            await reply.start()
        except (ReplyDeleted, discord.Forbidden) as error:  # gone, or the cached permissions were stale
            log.warning("Cannot reply in channel %s (%s); nothing described", sink.channel_id, error)
            return
        gathered = await gather_images(attachments, self.bot.shared_images, limit=limit, detail=detail, chosen=chosen)
        gathered.notes[:0] = notes
        if not gathered.images:
            await reply.fail(" ".join(gathered.notes) or NO_IMAGES)
            return
        question = user_turn(
            author_name=getattr(asker, "display_name", str(asker)),
            author_id=asker.id,
            text=prompt or shared_text or "(shared an image)",
            images=gathered.images,
            spoilers=gathered.spoilers,
            message_id=message_id,
        )
        answer = await self.bot.chat.describe(
            sink.channel_id,
            question,
            gathered.images,
            reply,
            MeteredVision(admission, self.bot.vision),
            request=describe_request(len(gathered.images), prompt, [image.frames for image in gathered.images]),
            notes=gathered.notes,
            system_prompt=style,
        )
        await self.bot.steering.answered(sink.channel_id, message_id, reply.message_ids, answer)

async def setup(bot: Glimpse) -> None:
    await bot.add_cog(Describe(bot))
