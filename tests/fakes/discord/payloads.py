"""Builders of the JSON shapes discord.py 2.7 parses (see discord/types/*.py), from :mod:`state` objects."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from .state import Attachment, Channel, Guild, Member, Message, Perm, Role, User, World

JSON = dict[str, Any]


def iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat()


def user(u: User) -> JSON:
    return {
        "id": str(u.id),
        "username": u.name,
        "global_name": u.global_name,
        "discriminator": "0",
        "avatar": None,
        "bot": u.bot,
        "public_flags": 0,
    }


def role(r: Role) -> JSON:
    return {
        "id": str(r.id),
        "name": r.name,
        "permissions": str(int(r.permissions)),
        "position": r.position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
        **({"tags": {"bot_id": None}} if r.managed else {}),
    }


def role_update(r: Role) -> JSON:
    """GUILD_ROLE_UPDATE's ``d`` (discord.py: ``parse_guild_role_update``)."""
    return {"guild_id": str(r.guild_id), "role": role(r)}


def member(m: Member, *, with_user: bool = True, permissions: Perm | None = None) -> JSON:
    data: JSON = {
        "roles": [str(r) for r in m.role_ids],
        "nick": m.nick,
        "joined_at": iso(m.joined_at),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "premium_since": None,
        "communication_disabled_until": m.communication_disabled_until,
    }
    if with_user:
        data["user"] = user(m.user)
    if permissions is not None:
        data["permissions"] = str(int(permissions))
    return data


def channel(c: Channel, world: World) -> JSON:
    if c.is_dm:
        return {
            "id": str(c.id),
            "type": int(c.type),
            "recipients": [user(world.users[r]) for r in c.recipient_ids],
            "last_message_id": None,
        }
    data: JSON = {
        "id": str(c.id),
        "type": int(c.type),
        "name": c.name,
        "guild_id": str(c.guild_id),
        "position": c.position,
        "parent_id": str(c.parent_id) if c.parent_id else None,
        "nsfw": False,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "topic": None,
        "permission_overwrites": [
            {"id": str(o.target_id), "type": o.kind, "allow": str(int(o.allow)), "deny": str(int(o.deny))}
            for o in c.overwrites
        ],
        "flags": 0,
    }
    if c.is_thread:
        data |= {
            "owner_id": str(c.owner_id),
            "message_count": len(world.channel_messages(c.id)),
            "member_count": 1,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": iso(0),
                "locked": False,
            },
        }
    return data


def guild_create(g: Guild, world: World) -> JSON:
    channels = [world.channels[c] for c in g.channel_ids]
    return {
        "id": str(g.id),
        "name": g.name,
        "owner_id": str(g.owner_id),
        "icon": None,
        "unavailable": False,
        "large": False,
        "member_count": len(g.members),
        "roles": [role(r) for r in g.roles.values()],
        "members": [member(m) for m in g.members.values()],
        "channels": [channel(c, world) for c in channels],
        "threads": [channel(t, world) for t in world.threads_of(g)],
        "emojis": [],
        "stickers": [],
        "features": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "preferred_locale": g.preferred_locale,
        "joined_at": iso(g.members[world.bot.id].joined_at),
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "system_channel_flags": 0,
    }


def attachment(a: Attachment, url: str) -> JSON:
    data: JSON = {
        "id": str(a.id),
        "filename": a.filename,
        "size": a.size,
        "url": url,
        "proxy_url": url,
        "content_type": a.content_type,
    }
    if a.description is not None:
        data["description"] = a.description
    if a.width is not None:
        data |= {"width": a.width, "height": a.height}
    return data


def message(m: Message, world: World, attachment_url: Any, *, include_reference: bool = True) -> JSON:
    """``attachment_url`` maps an :class:`Attachment` to its signed CDN URL."""
    channel_ = world.channels[m.channel_id]
    guild = world.guild_of(channel_)
    data: JSON = {
        "id": str(m.id),
        "channel_id": str(m.channel_id),
        "type": m.type,
        "author": user(m.author),
        "content": m.content,
        "timestamp": iso(m.created_at),
        "edited_timestamp": iso(m.edited_at) if m.edited_at else None,
        "tts": False,
        "mention_everyone": m.mention_everyone,
        "mentions": [_mentioned_user(world.users[u], guild) for u in m.mention_user_ids if u in world.users],
        "mention_roles": [str(r) for r in m.mention_role_ids],
        "attachments": [attachment(a, attachment_url(a)) for a in m.attachments],
        "embeds": m.embeds,
        "sticker_items": m.sticker_items,
        "components": m.components,
        "pinned": False,
        "flags": m.flags,
        "reactions": [
            {
                "emoji": {"id": None, "name": e},
                "count": len(us),
                "me": world.bot.id in us,
                "count_details": {"burst": 0, "normal": len(us)},
                "burst_colors": [],
                "me_burst": False,
            }
            for e, us in m.reactions.items()
            if us
        ],
    }
    if guild is not None:
        data["guild_id"] = str(guild.id)
        author_member = guild.members.get(m.author.id)
        if author_member is not None and m.webhook_id is None:
            data["member"] = member(author_member, with_user=False)
    if m.webhook_id is not None:
        data["webhook_id"] = str(m.webhook_id)
        data["application_id"] = str(world.application_id)
    if m.reference_id is not None:
        source = world.channels[m.reference_channel_id or m.channel_id]
        data["message_reference"] = {
            "type": m.reference_type,
            "message_id": str(m.reference_id),
            "channel_id": str(source.id),
            **({"guild_id": str(source.guild_id)} if source.guild_id else {}),
        }
        if m.snapshots:
            data["message_snapshots"] = m.snapshots
        referenced = world.messages.get(m.reference_id)
        if include_reference and m.reference_type == 0:  # a forward carries snapshots instead
            data["referenced_message"] = (
                None
                if referenced is None or referenced.deleted
                else message(referenced, world, attachment_url, include_reference=False)
            )
    return data


def snapshot(m: Message, world: World, attachment_url: Any) -> JSON:
    """A forwarded message's ``message_snapshots`` entry: its content, files, embeds, stickers as they are."""
    full = message(m, world, attachment_url, include_reference=False)
    keys = ("type", "content", "embeds", "attachments", "timestamp", "edited_timestamp", "flags",
            "mentions", "mention_roles", "sticker_items", "components")
    return {"message": {key: full[key] for key in keys}}


def without_content(data: JSON) -> JSON:
    """``data`` as a bot without the Message Content intent gets it: content, attachments, embeds and
    components emptied and no poll, in the message and in each forwarded snapshot's message (a subset
    of the message object, so the same rule; stickers stay, as Discord keeps them)."""
    emptied: JSON = {key: value for key, value in data.items() if key != "poll"}
    emptied |= {"content": "", "attachments": [], "embeds": [], "components": []}
    if "message_snapshots" in data:
        emptied["message_snapshots"] = [
            {**snap, "message": without_content(snap["message"])} for snap in data["message_snapshots"]
        ]
    return emptied


def _mentioned_user(u: User, guild: Guild | None) -> JSON:
    data = user(u)
    if guild is not None and u.id in guild.members:
        data["member"] = member(guild.members[u.id], with_user=False)
    return data


def application(world: World, *, message_content_granted: bool) -> JSON:
    flags = (1 << 18) if message_content_granted else (1 << 19)  # GATEWAY_MESSAGE_CONTENT(_LIMITED)
    owner = user(next((u for u in world.users.values() if not u.bot), world.bot))
    return {
        "id": str(world.application_id),
        "name": world.bot.name,
        "icon": None,
        "description": "",
        "rpc_origins": [],
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": owner,
        "summary": "",
        "verify_key": "0" * 64,
        "team": None,
        "flags": flags,
        "bot": user(world.bot),
        "interactions_endpoint_url": None,
        "redirect_uris": [],
        "tags": [],
        "integration_types_config": {"0": {}},
    }


def ready(
    world: World,
    session_id: str,
    resume_url: str,
    shard: list[int] | None,
    message_content: bool,
    guild_ids: Iterable[int],
) -> JSON:
    """READY for a session; ``guild_ids`` are the guilds of its shard (the others are not listed)."""
    data: JSON = {
        "v": 10,
        "user": user(world.bot) | {"verified": True, "mfa_enabled": False, "flags": 0},
        "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
        "session_id": session_id,
        "resume_gateway_url": resume_url,
        "application": {
            "id": str(world.application_id),
            "flags": application(world, message_content_granted=message_content)["flags"],
        },
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "_trace": ["glimpse-emulator"],
    }
    if shard is not None:
        data["shard"] = shard
    return data


def error(code: int, message: str, errors: JSON | None = None) -> JSON:
    data: JSON = {"code": code, "message": message}
    if errors:
        data["errors"] = errors
    return data


def field_error(path: str, code: str, text: str) -> JSON:
    """Discord's nested ``errors`` object for one field, e.g. ``content`` or ``embeds.0.description``."""
    node: JSON = {"_errors": [{"code": code, "message": text}]}
    for part in reversed(path.split(".")):
        node = {part: node}
    return node
