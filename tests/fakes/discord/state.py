"""The emulated Discord world: users, guilds, roles, members, channels, messages and permissions.

Plain data plus the permission arithmetic Discord documents ("Permission Hierarchy"); no I/O here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any, TypeVar

T = TypeVar("T")


class Perm(IntFlag):
    """Discord permission bits (the subset the emulator checks or hands out)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40


NO_PERMISSIONS = Perm(0)
ALL_PERMISSIONS = Perm((1 << 51) - 1)

EVERYONE_DEFAULT = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.SEND_MESSAGES_IN_THREADS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.ADD_REACTIONS
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.CREATE_INSTANT_INVITE
)
MODERATOR = Perm.MANAGE_MESSAGES | Perm.MODERATE_MEMBERS | Perm.MANAGE_GUILD | Perm.MANAGE_THREADS
BOT_DEFAULT = EVERYONE_DEFAULT | Perm.MANAGE_MESSAGES | Perm.MODERATE_MEMBERS


class ChannelType(IntEnum):
    TEXT = 0
    DM = 1
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12


DISCORD_EPOCH_MS = 1_420_070_400_000
_counter = itertools.count()


def snowflake() -> int:
    """A fresh, time-ordered snowflake (so ``created_at`` and ``before=`` paging behave)."""
    return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(_counter) % 4096)


def snowflake_on_shard(shard_id: int, shard_count: int) -> int:
    """A fresh snowflake whose guild would go to ``shard_id`` of ``shard_count``:
    ``(id >> 22) % shard_count == shard_id``, moved back at most ``shard_count - 1`` ms."""
    fresh = snowflake()
    stamp = fresh >> 22
    stamp -= (stamp - shard_id) % shard_count
    return (stamp << 22) | (fresh & ((1 << 22) - 1))


@dataclass(eq=False)
class User:
    id: int
    name: str
    bot: bool = False
    global_name: str | None = None
    locale: str = "en-US"
    """The language of the user's Discord client: sent with each interaction they start."""

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass(eq=False)
class Role:
    id: int
    guild_id: int
    name: str
    permissions: Perm
    position: int = 0
    mentionable: bool = False
    managed: bool = False

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"


@dataclass(eq=False)
class Member:
    user: User
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: float = field(default_factory=time.time)
    communication_disabled_until: str | None = None


@dataclass(eq=False)
class Overwrite:
    """A channel permission overwrite for a role (``kind`` 0) or a member (``kind`` 1)."""

    target_id: int
    kind: int
    allow: Perm = NO_PERMISSIONS
    deny: Perm = NO_PERMISSIONS


@dataclass(eq=False)
class Channel:
    id: int
    type: ChannelType
    name: str = ""
    guild_id: int | None = None
    parent_id: int | None = None
    position: int = 0
    overwrites: list[Overwrite] = field(default_factory=list)
    recipient_ids: list[int] = field(default_factory=list)
    owner_id: int | None = None

    @property
    def is_thread(self) -> bool:
        return self.type in (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD)

    @property
    def is_dm(self) -> bool:
        return self.type == ChannelType.DM

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"


@dataclass(eq=False)
class Attachment:
    id: int
    channel_id: int
    filename: str
    data: bytes
    content_type: str
    description: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Revision:
    """One state of a message's visible content: its creation or one edit, in order."""

    content: str
    attachments: tuple[str, ...]
    embeds: list[dict[str, object]]
    at: float
    kind: str  # "create" | "edit"
    components: list[dict[str, object]] = field(default_factory=list)


@dataclass(eq=False)
class Message:
    id: int
    channel_id: int
    author: User
    content: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    embeds: list[dict[str, object]] = field(default_factory=list)
    components: list[dict[str, object]] = field(default_factory=list)
    flags: int = 0
    reference_id: int | None = None
    mention_user_ids: list[int] = field(default_factory=list)
    mention_role_ids: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    edited_at: float | None = None
    created_at: float = field(default_factory=time.time)
    deleted: bool = False
    interaction_id: int | None = None
    webhook_id: int | None = None
    type: int = 0
    reactions: dict[str, set[int]] = field(default_factory=dict)
    revisions: list[Revision] = field(default_factory=list)
    sticker_items: list[dict[str, object]] = field(default_factory=list)
    reference_type: int = 0  # 0 a reply, 1 a forward
    reference_channel_id: int | None = None  # a forward's source channel (a reply's is its own)
    snapshots: list[dict[str, object]] = field(default_factory=list)  # a forward's message_snapshots

    @property
    def history(self) -> list[str]:
        """Every content this message has had, creation first."""
        return [revision.content for revision in self.revisions]

    @property
    def edit_count(self) -> int:
        return max(0, len(self.revisions) - 1)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)

    def record_revision(self, kind: str) -> None:
        self.revisions.append(
            Revision(
                content=self.content,
                attachments=tuple(a.filename for a in self.attachments),
                embeds=list(self.embeds),
                at=time.monotonic(),
                kind=kind,
                components=list(self.components),
            )
        )


@dataclass(eq=False)
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    preferred_locale: str = "en-US"
    command_permissions: dict[str, dict[int, bool]] = field(default_factory=dict)
    """Command id -> {role or user id (the guild id: @everyone) -> allowed}: what admins set in
    Server Settings > Integrations, above the command's ``default_member_permissions``."""

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]


class World:
    """Everything the emulator knows, with builders that read like setting up a server."""

    def __init__(self, bot_name: str = "Glimpse") -> None:
        self.bot = User(id=snowflake(), name=bot_name, bot=True)
        self.application_id = self.bot.id
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        # Application commands the bot registered, by guild id (None: global), as Discord stores them.
        self.commands: dict[int | None, list[dict[str, Any]]] = {}

    # ---- builders -------------------------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False) -> User:
        user = User(id=snowflake(), name=name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        name: str,
        *,
        owner: User | None = None,
        bot_permissions: Perm = BOT_DEFAULT,
        shard: tuple[int, int] | None = None,
    ) -> Guild:
        """A guild with an @everyone role, the bot as a member (own managed role) and an owner.

        ``shard=(shard_id, shard_count)`` picks an id whose events go to that shard.
        """
        owner = owner or self.add_user(f"{name} owner")
        guild_id = snowflake() if shard is None else snowflake_on_shard(*shard)
        guild = Guild(id=guild_id, name=name, owner_id=owner.id)
        guild.roles[guild.id] = Role(guild.id, guild.id, "@everyone", EVERYONE_DEFAULT, position=0)
        self.guilds[guild.id] = guild
        self.add_member(guild, owner)
        bot_role = self.add_role(guild, self.bot.name, bot_permissions, managed=True)
        self.add_member(guild, self.bot, roles=[bot_role])
        return guild

    def add_role(
        self, guild: Guild, name: str, permissions: Perm, *, mentionable: bool = False, managed: bool = False
    ) -> Role:
        role = Role(snowflake(), guild.id, name, Perm(permissions), len(guild.roles), mentionable, managed)
        guild.roles[role.id] = role
        return role

    def add_member(self, guild: Guild, user: User, *, roles: list[Role] | None = None) -> Member:
        member = Member(user=user, guild_id=guild.id, role_ids=[r.id for r in roles or []])
        guild.members[user.id] = member
        return member

    def add_text_channel(
        self, guild: Guild, name: str, *, overwrites: list[Overwrite] | None = None
    ) -> Channel:
        channel = Channel(
            snowflake(),
            ChannelType.TEXT,
            name,
            guild.id,
            position=len(guild.channel_ids),
            overwrites=overwrites or [],
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        return channel

    def add_thread(
        self, parent: Channel, name: str, *, owner: User | None = None, thread_id: int | None = None
    ) -> Channel:
        """A public thread in ``parent`` (``thread_id``: a starter message's id, for one opened from it)."""
        thread = Channel(
            thread_id or snowflake(),
            ChannelType.PUBLIC_THREAD,
            name,
            parent.guild_id,
            parent_id=parent.id,
            owner_id=(owner or self.bot).id,
        )
        self.channels[thread.id] = thread
        return thread

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between ``user`` and the bot, created on first use like Discord does."""
        for channel in self.channels.values():
            if channel.is_dm and channel.recipient_ids == [user.id]:
                return channel
        channel = Channel(snowflake(), ChannelType.DM, recipient_ids=[user.id])
        self.channels[channel.id] = channel
        return channel

    def set_bot_permissions(self, guild: Guild, permissions: Perm) -> list[Role]:
        """Replace the permissions of the bot's managed role (e.g. to drop Manage Messages).

        Returns the roles that changed (for the GUILD_ROLE_UPDATE the emulator dispatches)."""
        changed: list[Role] = []
        for role in self.roles_of(guild, self.bot.id):
            if role.managed:
                changed += self.set_role_permissions(role, permissions)
        return changed

    def set_role_permissions(self, role: Role, permissions: Perm) -> list[Role]:
        """Replace ``role``'s permissions; returns ``[role]`` if they changed, else ``[]``."""
        if role.permissions == permissions:
            return []
        role.permissions = Perm(permissions)
        return [role]

    def move_role(self, role: Role, position: int) -> None:
        """Put ``role`` at ``position`` in its guild's hierarchy (higher is more powerful; @everyone is 0)."""
        role.position = position

    def overwrite(
        self,
        channel: Channel,
        target: Role | User,
        *,
        allow: Perm = NO_PERMISSIONS,
        deny: Perm = NO_PERMISSIONS,
    ) -> None:
        """Set ``target``'s overwrite on ``channel`` (Discord keeps one per target: a second one replaces it).

        Both zero removes it."""
        kind = 0 if isinstance(target, Role) else 1
        channel.overwrites = [o for o in channel.overwrites if (o.target_id, o.kind) != (target.id, kind)]
        if allow or deny:
            channel.overwrites.append(Overwrite(target.id, kind, Perm(allow), Perm(deny)))

    # ---- lookups --------------------------------------------------------------------------

    def guild_named(self, name: str) -> Guild:
        return _only(g for g in self.guilds.values() if g.name == name)

    def channel_named(self, name: str, guild: Guild | None = None) -> Channel:
        return _only(
            c for c in self.channels.values() if c.name == name and (guild is None or c.guild_id == guild.id)
        )

    def user_named(self, name: str) -> User:
        return _only(u for u in self.users.values() if u.name == name)

    def guild_of(self, channel: Channel) -> Guild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id is not None else None

    def threads_of(self, guild: Guild) -> list[Channel]:
        return [c for c in self.channels.values() if c.is_thread and c.guild_id == guild.id]

    def roles_of(self, guild: Guild, user_id: int) -> list[Role]:
        member = guild.members.get(user_id)
        return [guild.roles[r] for r in member.role_ids if r in guild.roles] if member else []

    def channel_messages(self, channel_id: int) -> list[Message]:
        """Live messages of a channel as the channel shows them to everyone (no ephemerals), oldest first."""
        return [
            m
            for m in self.messages.values()
            if m.channel_id == channel_id and not m.deleted and not m.ephemeral
        ]

    # ---- permissions ----------------------------------------------------------------------

    def may_invoke(self, command: dict[str, Any], user_id: int, channel: Channel) -> bool:
        """Whether Discord lets ``user_id`` use ``command`` in ``channel``, as its clients enforce it.

        DMs: not when the command is guild-only. Guilds: the owner and administrators always; then
        the admins' overrides for this command (the user's own, else any of their roles' (an allow
        wins), else @everyone's); else ``default_member_permissions`` (``None``: everyone, ``"0"``:
        administrators only, otherwise every bit, from the member's guild-level permissions).
        """
        guild = self.guild_of(channel)
        if guild is None:
            contexts = command.get("contexts")
            return command.get("dm_permission") is not False and (contexts is None or 1 in contexts)
        base = self.base_permissions(guild, user_id)
        if base & Perm.ADMINISTRATOR:
            return True
        overrides = guild.command_permissions.get(str(command["id"]), {})
        member = guild.members.get(user_id)
        roles = [overrides[r] for r in (member.role_ids if member else []) if r in overrides]
        for decided in (overrides.get(user_id), any(roles) if roles else None, overrides.get(guild.id)):
            if decided is not None:
                return decided
        required = command.get("default_member_permissions")
        if required is None:
            return True
        needed = Perm(int(required))
        return bool(needed) and base & needed == needed

    def top_role_position(self, guild: Guild, user_id: int) -> int:
        return max((r.position for r in self.roles_of(guild, user_id)), default=0)

    def outranks(self, guild: Guild, actor_id: int, target_id: int) -> bool:
        """Discord's role hierarchy: the owner outranks everyone; otherwise the highest role decides."""
        if actor_id == guild.owner_id:
            return True
        if target_id == guild.owner_id:
            return False
        return self.top_role_position(guild, actor_id) > self.top_role_position(guild, target_id)

    def base_permissions(self, guild: Guild, user_id: int) -> Perm:
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        perms = guild.everyone.permissions
        for role in self.roles_of(guild, user_id):
            perms |= role.permissions
        return ALL_PERMISSIONS if perms & Perm.ADMINISTRATOR else perms

    def permissions_in(self, channel: Channel, user_id: int) -> Perm:
        """Effective permissions of ``user_id`` in ``channel`` (threads use their parent's overwrites)."""
        guild = self.guild_of(channel)
        if guild is None:  # DMs: everything a DM allows
            return EVERYONE_DEFAULT
        if user_id not in guild.members:
            return Perm(0)
        perms = self.base_permissions(guild, user_id)
        if perms & Perm.ADMINISTRATOR:
            return ALL_PERMISSIONS
        source = self.channels[channel.parent_id] if channel.is_thread and channel.parent_id else channel
        role_ids = set(guild.members[user_id].role_ids)
        everyone = [o for o in source.overwrites if o.kind == 0 and o.target_id == guild.id]
        roles = [o for o in source.overwrites if o.kind == 0 and o.target_id in role_ids]
        members = [o for o in source.overwrites if o.kind == 1 and o.target_id == user_id]
        for group in (everyone, roles, members):
            allow = Perm(0)
            deny = Perm(0)
            for o in group:
                allow |= o.allow
                deny |= o.deny
            perms = (perms & ~deny) | allow
        if not perms & Perm.VIEW_CHANNEL:
            return Perm(0)
        return perms


def _only(items: Iterable[T]) -> T:
    found = list(items)
    if len(found) != 1:
        raise LookupError(f"expected exactly one match, found {len(found)}")
    return found[0]
