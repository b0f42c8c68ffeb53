"""Conversation: mention or reply to the bot, DMs, `/ask`, `/forget` and `/context`."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown

from bot.access import message_member, permit, place_of
from bot.addressing import addresses_bot, sync_scope
from bot.conversation import MEMORY_UNAVAILABLE, AnswerKind, AnswerRef, user_turn
from bot.guard import Admission, MeteredVision, Purpose, Work
from bot.guild import ChatMode, Feature
from bot.images import AttachmentLike, gather_images, image_attachments, is_image
from bot.interactions import acknowledge
from bot.moderation.discord import FLAGGED_IMAGE, flagged_earlier, withheld
from bot.prompts import animation_note
from bot.replies import (
    MessageSink,
    OncePerChannel,
    ReplySink,
    Wrap,
    missing_reply_permissions,
    reply_briefly,
)

if TYPE_CHECKING:
    from bot.app import Glimpse

log = logging.getLogger(__name__)

NOT_AN_IMAGE = "Skipped {name}: it is not an image."

HISTORY_LOOKBACK = 25
"""Messages scanned for "the image above" when a question comes without an image."""
THREAD_NAME_CHARS = 80
"""A conversation thread is named after the question that opened it (Discord allows 100 characters)."""
THREAD_ARCHIVE_MINUTES = 1440


class Chat(commands.Cog):
    def __init__(self, bot: Glimpse) -> None:
        self.bot = bot
        self._warned = OncePerChannel()  # channels where a missing permission was already logged

    def _question_text(self, message: discord.Message) -> str:
        assert self.bot.user is not None
        return re.sub(rf"<@!?{self.bot.user.id}>", "", message.content).strip()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        addressed = addresses_bot(message, self.bot.user)
        place = place_of(message.channel)
        here = await self.bot.server_settings.behaviour(place)
        # without the Message Content intent, a message that does not mention the bot arrives empty
        free = here.answers_every_message and self.bot.intents.message_content
        if not (addressed or free) or self._is_owner_command(message):
            return
        # Refusals stay quiet: a message is not a request for an error line.
        if not (await self.bot.server_settings.decide(message_member(message), place, Feature.CHAT)).allowed:
            return
        if not await self.bot.claims.claim(Work.REPLY, message.id):
            return
        if missing := missing_reply_permissions(message.channel):
            if self._warned.first(message.channel.id, missing):
                log.warning(
                    "Mentioned in channel %s without %s; not answering there (said once)",
                    message.channel.id, " or ".join(missing),
                )
            return
        admission = await self.bot.gate.admit(message, Purpose.CHAT)
        if admission is None:
            return
        # Its images, then those of the message it replies to ("what does this say?" on someone's image).
        found = await self.bot.media.images(message, emoji=True, wait=True)
        if found.sources and await withheld(message, self.bot.moderation):
            log.info("Message %s was flagged by moderation: not answered", message.id)
            return
        earlier = await self.bot.media.replied_to(message)
        if earlier is not None:
            theirs = self.bot.media.found(earlier, emoji=True)
            if theirs.sources and await flagged_earlier(earlier, theirs.sources, self.bot.moderation):
                log.info("Message %s replies to images flagged by moderation: not answered", message.id)
                await reply_briefly(message, FLAGGED_IMAGE)
                return
            found.extend(theirs)
        attachments = [a for a in message.attachments if not is_image(a)] + found.sources
        text = self._question_text(message)
        channel: discord.abc.Messageable = message.channel
        if here.chat == ChatMode.THREAD:
            thread = await self._open_thread(message, text)
            if thread is None:
                return
            channel = thread
        await self.ask(
            MessageSink(message, into=channel),
            admission,
            channel=channel,
            author=message.author,
            text=text,
            attachments=attachments,
            message_id=message.id,
            persona=here.persona,
            left_out=found.notes_when_empty(),
        )

    async def _open_thread(self, message: discord.Message, text: str) -> discord.Thread | None:
        """The thread that holds the conversation a mention starts in a thread-mode channel."""
        name = " ".join(text.split())[:THREAD_NAME_CHARS] or f"Glimpse and {message.author.display_name}"[:100]
        channel = message.channel
        if isinstance(channel, discord.TextChannel):
            mine = channel.permissions_for(channel.guild.me)
            if not (mine.create_public_threads and mine.send_messages_in_threads):
                log.warning("May not open threads in channel %s (thread mode); not answering", channel.id)
                return None
        try:
            return await message.create_thread(name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES)
        except discord.HTTPException as error:
            log.warning("Could not open a thread in channel %s (%s); not answering", message.channel.id, error)
            return None

    def _is_owner_command(self, message: discord.Message) -> bool:
        """`@Glimpse sync [scope]`, exactly, is a command for the admin cog, not a question."""
        return sync_scope(self._question_text(message)) is not None

    @app_commands.command(name="ask", description="Ask Glimpse something; it remembers this channel's conversation.")
    @app_commands.describe(prompt="Your question", image="An image to ask about")
    async def ask_command(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 2000],
        image: discord.Attachment | None = None,
    ) -> None:
        if not await permit(self.bot.server_settings, interaction, Feature.CHAT):
            return
        admission = await self.bot.gate.admit(interaction, Purpose.CHAT)  # bounded wait: then the defer
        if admission is None:
            return
        assert interaction.channel is not None
        here = await self.bot.server_settings.behaviour(place_of(interaction.channel))
        await interaction.response.defer(thinking=True)
        await self.ask(
            self.bot.reply_sink(interaction),
            admission,
            channel=interaction.channel,
            author=interaction.user,
            text=prompt,
            attachments=[image] if image else [],
            message_id=interaction.id,
            persona=here.persona,
        )

    @app_commands.command(name="forget", description="Clear what Glimpse remembers of this channel.")
    @app_commands.default_permissions(manage_messages=True)
    async def forget_command(self, interaction: discord.Interaction) -> None:
        # Checked here, not only by the default permission, which server admins can override.
        if interaction.guild is not None and not interaction.permissions.manage_messages:
            await interaction.response.send_message(
                "You need the Manage Messages permission to clear this channel's memory.", ephemeral=True
            )
            return
        assert interaction.channel_id is not None
        await acknowledge(interaction)  # the store may be slow
        removed = await self.bot.chat.forget(
            interaction.channel_id,
            snowflake=interaction.id,
            horizon_seconds=self.bot.settings.recent_image_minutes * 60,
        )
        log.info("User %s cleared the memory of channel %s", interaction.user.id, interaction.channel_id)
        await interaction.edit_original_response(
            content=f"Done: I forgot this channel's conversation: {_count(removed, 'stored message')}"
            " (older ones too), and their images."
        )

    @app_commands.command(name="context", description="Show what Glimpse currently remembers of this channel.")
    async def context_command(self, interaction: discord.Interaction) -> None:
        assert interaction.channel_id is not None
        await acknowledge(interaction)  # the store may be slow
        summary = await self.bot.chat.context(interaction.channel_id)
        limits = self.bot.chat.limits
        if not summary.turns:
            text = "I remember nothing of this channel's current conversation."
        else:
            age = timedelta(seconds=round(summary.age_seconds()))
            text = (
                f"For the next question here I would use {_count(summary.turns, 'remembered message')} "
                f"with {_count(summary.images, 'image')} from the last {age} (about {summary.tokens:,} "
                f"tokens; at most {limits.max_turns} messages and {limits.max_tokens:,} tokens go with "
                "each question, so the oldest may be left out)."
            )
        await interaction.edit_original_response(content=text)

    async def ask(
        self,
        sink: ReplySink,
        admission: Admission,
        *,
        channel: discord.abc.Messageable,
        author: discord.abc.User,
        text: str,
        attachments: list[AttachmentLike],
        message_id: int,
        persona: str = "",
        left_out: Sequence[str] = (),
    ) -> None:
        """Placeholder at once; then images (attached, or the one posted above) and the answer.

        ``persona``: the server's (or channel's) system prompt, "" for the built-in one."""
        settings = self.bot.settings
        limit = settings.max_images_per_request
        # A file that is not an image is said to be skipped; it does not stand for "the image above".
        notes = [NOT_AN_IMAGE.format(name=escape_markdown(a.filename[:80])) for a in attachments if not is_image(a)]
        notes += left_out
        channel_id = getattr(channel, "id", 0)
        memory = await self.bot.chat.recall(channel_id)  # one read: the wrap and the request agree
        if not memory.available:
            notes.append(MEMORY_UNAVAILABLE)
        elif not attachments:
            window = timedelta(minutes=settings.recent_image_minutes)
            attachments, above = await self._images_above(channel, window, after_id=memory.image_horizon)
            notes += above
        spoiler = any(a.is_spoiler() for a in image_attachments(attachments)[:limit])
        spoiler = spoiler or self.bot.chat.spoiler_in_memory(memory.turns)
        ref = AnswerRef(AnswerKind.CHAT, message_id, author.id)
        reply = self.bot.steering.reply(sink, ref, wrap=Wrap.SPOILER if spoiler else None)
        await reply.start()
        gathered = await gather_images(attachments, self.bot.shared_images, limit=limit)
        question = user_turn(
            author_name=getattr(author, "display_name", str(author)),
            author_id=author.id,
            text=" ".join(filter(None, (text or "(no text)", animation_note([i.frames for i in gathered.images])))),
            images=gathered.images,
            spoilers=gathered.spoilers,
            message_id=message_id,
        )
        answer = await self.bot.chat.answer(
            channel_id,
            question,
            gathered.images,
            reply,
            MeteredVision(admission, self.bot.vision),
            history=memory.turns,
            notes=notes + gathered.notes,
            persona=persona,
        )
        await self.bot.steering.answered(channel_id, message_id, reply.message_ids, answer)

    async def _images_above(
        self, channel: discord.abc.Messageable, window: timedelta, *, after_id: int
    ) -> tuple[list[AttachmentLike], list[str]]:
        """The images of the most recent message with images in the channel, within the window and
        newer than ``after_id`` (images up to there are in memory already, or were forgotten)."""
        oldest = discord.utils.time_snowflake(discord.utils.utcnow() - window)
        after = discord.Object(id=max(oldest, after_id))
        try:
            async for earlier in channel.history(limit=HISTORY_LOOKBACK, after=after, oldest_first=False):
                found = self.bot.media.found(earlier).sources
                if found and earlier.author != self.bot.user:
                    if await flagged_earlier(earlier, found, self.bot.moderation):
                        log.info("The image above (message %s) was flagged by moderation: not used", earlier.id)
                        return [], []
                    name = escape_markdown(earlier.author.display_name)
                    return found, [f"Looking at the image {name} posted above."]
        except discord.HTTPException:
            log.info("Cannot read the history of channel %s", getattr(channel, "id", "?"))
        return [], []


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


async def setup(bot: Glimpse) -> None:
    await bot.add_cog(Chat(bot))
