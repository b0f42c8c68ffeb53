"""The one place that answers "what does this channel do?" and "may this member use this feature here?".

Cogs turn a Discord event into plain facts (:class:`Member`, :class:`Place`) and ask; nothing else
re-implements a rule. Access rules: a block (of the user, or of any of their roles) always wins; with
no allow rule everyone may use the bot, with any, only members holding an allowed role. Members with
Manage Server may always use ``/settings`` (so nobody locks the admins out). Moderation is not a
feature here: it applies to everyone. DMs follow the deployment (``ALLOW_DMS``), not any server.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.guild.config import AltText, ChatMode, GuildSettings

Source = Literal["server", "deployment"]


class Feature(StrEnum):
    CHAT = "chat"
    """Conversation: a mention, a reply, a free-response message, ``/ask``."""
    DESCRIBE = "describe"
    """``/describe`` and "Describe image"."""
    AUTO_DESCRIBE = "auto-describe"
    """Automatic alt text for an image posted in a describe channel."""
    OCR = "ocr"
    SETTINGS = "settings"


@dataclass(frozen=True)
class Defaults:
    """The deployment's defaults (from the environment), under every server's own settings."""

    describe_channel_ids: frozenset[int] = frozenset()
    allow_dms: bool = True


@dataclass(frozen=True)
class Member:
    user_id: int
    role_ids: frozenset[int] = frozenset()
    manages_guild: bool = False


@dataclass(frozen=True)
class Place:
    """Where something happens: a guild channel or thread, or a DM (``guild_id=None``)."""

    channel_id: int
    guild_id: int | None = None
    parent_id: int | None = None
    """The channel a thread belongs to."""
    bot_thread: bool = False
    """A thread the bot itself created (in a thread-mode channel, one conversation's home)."""


@dataclass(frozen=True)
class ChannelBehaviour:
    """What a channel does, and where each part comes from (for ``/settings show``)."""

    describe: bool
    describe_from: Source
    chat: ChatMode
    chat_from: Source
    persona: str
    """The system prompt to use ("" = the built-in one): the channel's own, else the server's."""
    alt_text: AltText
    conversation_thread: bool = False
    """A thread the bot opened in a thread-mode channel: every message in it continues that conversation."""

    @property
    def answers_every_message(self) -> bool:
        return self.chat == ChatMode.EVERY_MESSAGE or self.conversation_thread

    @property
    def auto_describe(self) -> bool:
        """Automatic alt text here; in a channel that answers every message the answer covers the image."""
        return self.describe and not self.answers_every_message


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    """One short line for the person who asked (never shown where a reply would be noise)."""


ALLOWED = Decision(True)
BLOCKED = "You can't use Glimpse in this server."
NOT_ALLOWED = "Only some roles may use Glimpse in this server, and you have none of them."
NO_DMS = "I don't take direct messages; please ask in a server."
CHAT_OFF = "Conversation with Glimpse is turned off in this channel."
DESCRIBE_OFF = "Automatic alt text is off in this channel."
NEEDS_MANAGE_SERVER = "You need the Manage Server permission to change Glimpse's settings."


def behaviour(settings: GuildSettings, defaults: Defaults, place: Place) -> ChannelBehaviour:
    """What ``place`` does: its own setting, else its parent channel's (a thread), else the defaults."""
    if place.guild_id is None:
        mode = ChatMode.MENTION if defaults.allow_dms else ChatMode.OFF
        return ChannelBehaviour(False, "deployment", mode, "deployment", "", settings.alt_text)
    ids = [place.channel_id] + ([place.parent_id] if place.parent_id is not None else [])
    describe_at = next((cid for cid in ids if cid in settings.describe), None)
    describe_from: Source
    if describe_at is not None:
        describe, describe_from = settings.describe[describe_at], "server"
    else:
        describe = any(cid in defaults.describe_channel_ids for cid in ids)
        describe_from = "deployment"
    chat_at = next((cid for cid in ids if cid in settings.chat), None)
    chat = settings.chat[chat_at] if chat_at is not None else ChatMode.MENTION
    conversation_thread = False
    if chat == ChatMode.THREAD and place.parent_id is not None:
        # a thread cannot open threads: the bot's own threads are conversations, others are as "mention"
        conversation_thread, chat = place.bot_thread, ChatMode.MENTION
    persona = next((settings.channel_personas[cid] for cid in ids if cid in settings.channel_personas), "")
    return ChannelBehaviour(
        describe=describe,
        describe_from=describe_from,
        chat=chat,
        chat_from="server" if chat_at is not None else "deployment",
        persona=persona or settings.persona,
        alt_text=settings.alt_text,
        conversation_thread=conversation_thread,
    )


def access(settings: GuildSettings, member: Member) -> Decision:
    """Whether ``member`` may use the bot at all in this server (the access rules alone)."""
    if member.user_id in settings.blocked_users or member.role_ids & settings.blocked_roles:
        return Decision(False, BLOCKED)
    if settings.allowed_roles and not member.role_ids & settings.allowed_roles:
        return Decision(False, NOT_ALLOWED)
    return ALLOWED


def decide(settings: GuildSettings, defaults: Defaults, member: Member, place: Place, feature: Feature) -> Decision:
    """May ``member`` use ``feature`` at ``place``? The channel's behaviour, then the access rules."""
    if feature == Feature.SETTINGS:
        allowed = place.guild_id is not None and member.manages_guild
        return ALLOWED if allowed else Decision(False, NEEDS_MANAGE_SERVER)
    if place.guild_id is None:
        return ALLOWED if defaults.allow_dms else Decision(False, NO_DMS)
    here = behaviour(settings, defaults, place)
    if feature == Feature.CHAT and here.chat == ChatMode.OFF:
        return Decision(False, CHAT_OFF)
    if feature == Feature.AUTO_DESCRIBE and not here.auto_describe:
        return Decision(False, DESCRIBE_OFF)
    return access(settings, member)
