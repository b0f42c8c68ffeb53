"""Messages as Discord handles them: validation limits, who gets pinged, history, and the gateway events.

Shared by the REST routes (the bot sending) and the test actions (people posting).
"""

from __future__ import annotations

import io
import mimetypes
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from . import errors, payloads
from .cdn import Cdn
from .gateway import DIRECT_MESSAGES, GUILD_MESSAGES, Gateway
from .records import MentionRecord, Recorder
from .state import Attachment, Channel, Message, Perm, User, World, snowflake

JSON = dict[str, Any]

CONTENT_LIMIT = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL = 6000
FILES_PER_MESSAGE = 10
EPHEMERAL = 1 << 6
LOADING = 1 << 7

_EMBED_LIMITS = {"title": 256, "description": 4096}
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE = re.compile(r"@(everyone|here)\b")

# ``allowed_mentions`` absent: Discord parses everything in the content and pings the replied-to author.
ABSENT: JSON | None = None


@dataclass(frozen=True)
class NewFile:
    """A file to attach: (filename, bytes[, content_type]) as tests and multipart requests give them."""

    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None

    @classmethod
    def coerce(cls, item: NewFile | tuple[Any, ...]) -> NewFile:
        return item if isinstance(item, NewFile) else cls(*item)


def _limit(value: Any, limit: int, path: str) -> int:
    text = str(value or "")
    if len(text) > limit:
        raise errors.invalid_form(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(text)


def validate_embeds(embeds: Sequence[JSON]) -> None:
    if len(embeds) > EMBEDS_PER_MESSAGE:
        raise errors.invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in _EMBED_LIMITS.items():
            total += _limit(embed.get(key), limit, f"embeds.{i}.{key}")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise errors.invalid_form(
                f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for j, f in enumerate(fields):
            total += _limit(f.get("name"), 256, f"embeds.{i}.fields.{j}.name")
            total += _limit(f.get("value"), 1024, f"embeds.{i}.fields.{j}.value")
        total += _limit((embed.get("footer") or {}).get("text"), 2048, f"embeds.{i}.footer.text")
        total += _limit((embed.get("author") or {}).get("name"), 256, f"embeds.{i}.author.name")
    if total > EMBED_TOTAL:
        raise errors.invalid_form(
            "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )


def validate_body(body: JSON, files: Sequence[NewFile], *, creating: bool, upload_limit: int) -> None:
    """Discord's checks on a message create/edit body, with its error codes."""
    if "content" in body:
        _limit(body["content"], CONTENT_LIMIT, "content")
    validate_embeds(body.get("embeds") or [])
    if len(files) > FILES_PER_MESSAGE:
        raise errors.invalid_form("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    if any(len(f.data) > upload_limit for f in files):
        raise errors.DiscordError(413, 40005, "Request entity too large")
    allowed = body.get("allowed_mentions")
    if allowed and "users" in (allowed.get("parse") or []) and allowed.get("users"):
        raise errors.invalid_form(
            "allowed_mentions",
            "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
            'parse:["users"] and users: [ids] are mutually exclusive.',
        )
    has_something = (
        body.get("content")
        or body.get("embeds")
        or files
        or body.get("components")
        or body.get("sticker_ids")
    )
    if creating and not has_something:
        raise errors.DiscordError(400, 50006, "Cannot send an empty message")


class Messages:
    def __init__(
        self, world: World, recorder: Recorder, gateway: Gateway, cdn: Cdn, upload_limit: int
    ) -> None:
        self.world = world
        self.recorder = recorder
        self.gateway = gateway
        self.cdn = cdn
        self.upload_limit = upload_limit

    def payload(self, message: Message) -> JSON:
        return payloads.message(message, self.world, self.cdn.url_for)

    def get(self, channel: Channel, message_id: int) -> Message:
        message = self.world.messages.get(message_id)
        if message is None or message.deleted or message.ephemeral or message.channel_id != channel.id:
            raise errors.unknown("message")
        return message

    # ---- mentions -------------------------------------------------------------------------

    def pings(
        self, channel: Channel, author: User, content: str, allowed: JSON | None, replied_to: Message | None
    ) -> tuple[set[int], set[int], bool]:
        """Users, roles and @everyone that a message would ping under Discord's allowed_mentions rules."""
        guild = self.world.guild_of(channel)
        can_everyone = guild is not None and bool(
            self.world.permissions_in(channel, author.id) & Perm.MENTION_EVERYONE
        )
        parse = {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse") or [])
        listed_users = {int(u) for u in (allowed or {}).get("users") or []}
        listed_roles = {int(r) for r in (allowed or {}).get("roles") or []}
        replied_user = True if allowed is None else bool(allowed.get("replied_user", False))

        users = {
            int(u)
            for u in _USER_MENTION.findall(content)
            if int(u) in self.world.users and ("users" in parse or int(u) in listed_users)
        }
        roles: set[int] = set()
        if guild is not None:
            for r in map(int, _ROLE_MENTION.findall(content)):
                role = guild.roles.get(r)
                if role and ("roles" in parse or r in listed_roles) and (role.mentionable or can_everyone):
                    roles.add(r)
        everyone = bool(_EVERYONE.search(content)) and "everyone" in parse and can_everyone
        if replied_to is not None and replied_user and replied_to.author.id != author.id:
            users.add(replied_to.author.id)
        return users, roles, everyone

    def _apply_mentions(self, message: Message, allowed: JSON | None, kind: str) -> None:
        replied = self.world.messages.get(message.reference_id) if message.reference_id else None
        channel = self.world.channels[message.channel_id]
        users, roles, everyone = self.pings(channel, message.author, message.content, allowed, replied)
        message.mention_user_ids = sorted(users)
        message.mention_role_ids = sorted(roles)
        message.mention_everyone = everyone
        record = MentionRecord(message.id, kind, allowed, frozenset(users), frozenset(roles), everyone)
        self.recorder.add(self.recorder.mentions, record)

    # ---- lifecycle ------------------------------------------------------------------------

    def new_attachment(self, channel: Channel, file: NewFile) -> Attachment:
        content_type = (
            file.content_type or mimetypes.guess_type(file.filename)[0] or "application/octet-stream"
        )
        width = height = None
        if content_type.startswith("image/"):
            try:
                with Image.open(io.BytesIO(file.data)) as image:
                    width, height = image.size
            except Exception:  # a test may post bytes that are not really an image, as people do
                pass
        attachment = Attachment(
            snowflake(), channel.id, file.filename, file.data, content_type, file.description, width, height
        )
        self.cdn.register(attachment)
        return attachment

    async def create(
        self,
        channel: Channel,
        author: User,
        *,
        content: str = "",
        files: Sequence[NewFile] = (),
        embeds: Sequence[JSON] = (),
        components: Sequence[JSON] = (),
        reference_id: int | None = None,
        allowed_mentions: JSON | None = ABSENT,
        flags: int = 0,
        webhook_id: int | None = None,
        interaction_id: int | None = None,
        message_type: int = 0,
        sticker_items: Sequence[JSON] = (),
        forward_of: Message | None = None,
    ) -> Message:
        message = Message(
            id=snowflake(),
            channel_id=channel.id,
            author=author,
            content=content,
            attachments=[self.new_attachment(channel, f) for f in files],
            embeds=list(embeds),
            components=list(components),
            flags=flags,
            reference_id=reference_id,
            webhook_id=webhook_id,
            interaction_id=interaction_id,
            type=message_type,
            sticker_items=list(sticker_items),
        )
        if forward_of is not None:
            message.reference_id, message.reference_type = forward_of.id, 1
            message.reference_channel_id = forward_of.channel_id
            message.snapshots = [payloads.snapshot(forward_of, self.world, self.cdn.url_for)]
        self.world.messages[message.id] = message
        self._apply_mentions(message, allowed_mentions, "create")
        message.record_revision("create")
        await self._dispatch("MESSAGE_CREATE", message)
        return message

    async def edit(
        self,
        message: Message,
        body: JSON,
        files: Sequence[NewFile] = (),
    ) -> Message:
        """Apply an edit body (the fields present replace the old ones) and record the new revision."""
        if message.deleted:
            raise errors.unknown("message")
        channel = self.world.channels[message.channel_id]
        if "content" in body:
            message.content = body["content"] or ""
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "components" in body:
            message.components = list(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            message.flags = (message.flags & EPHEMERAL) | int(body["flags"])
        if "attachments" in body and body["attachments"] is not None:
            kept = {str(a.get("id")) for a in body["attachments"]}  # new files use their index as id
            message.attachments = [a for a in message.attachments if str(a.id) in kept]
        message.attachments += [self.new_attachment(channel, f) for f in files]
        message.flags &= ~LOADING
        message.edited_at = time.time()
        self._apply_mentions(message, body.get("allowed_mentions"), "edit")
        message.record_revision("edit")
        await self._dispatch("MESSAGE_UPDATE", message)
        return message

    async def add_embeds(self, message: Message, embeds: Sequence[JSON]) -> Message:
        """Discord's unfurl: embeds added by Discord itself (a MESSAGE_UPDATE; no edit by the author)."""
        if message.deleted:
            raise errors.unknown("message")
        message.embeds = [*message.embeds, *embeds]
        await self._dispatch("MESSAGE_UPDATE", message)
        return message

    async def delete(self, message: Message) -> None:
        if message.deleted:
            raise errors.unknown("message")
        message.deleted = True
        self.recorder.notifier.notify()
        if message.ephemeral:
            return
        channel = self.world.channels[message.channel_id]
        data: JSON = {"id": str(message.id), "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
        await self.gateway.dispatch(
            "MESSAGE_DELETE", data, guild_id=channel.guild_id, intent=self._intent(channel)
        )

    async def delete_bulk(self, channel: Channel, messages: Sequence[Message]) -> None:
        """Delete several messages of one channel at once: one MESSAGE_DELETE_BULK, as Discord sends it."""
        for message in messages:
            message.deleted = True
        self.recorder.notifier.notify()
        data: JSON = {"ids": [str(m.id) for m in messages], "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
        await self.gateway.dispatch(
            "MESSAGE_DELETE_BULK", data, guild_id=channel.guild_id, intent=self._intent(channel)
        )

    @staticmethod
    def _intent(channel: Channel) -> int:
        return DIRECT_MESSAGES if channel.is_dm else GUILD_MESSAGES

    async def _dispatch(self, event: str, message: Message) -> None:
        if message.ephemeral:  # ephemeral messages never reach the gateway
            self.recorder.notifier.notify()
            return
        channel = self.world.channels[message.channel_id]
        await self.gateway.dispatch(
            event,
            self.payload(message),
            guild_id=channel.guild_id,
            intent=self._intent(channel),
            content_exempt=self.content_exempt(message),
        )

    def content_exempt(self, message: Message) -> bool:
        """Whether a bot without the Message Content intent still gets ``message`` in full: in a DM,
        its own messages and messages that mention it."""
        bot_id = self.world.bot.id
        return (
            self.world.channels[message.channel_id].is_dm
            or message.author.id == bot_id
            or bot_id in message.mention_user_ids
        )
