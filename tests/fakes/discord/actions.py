"""What people do in Discord, as tests express it: post, reply, edit, delete, react, run commands, click.

Commands are looked up among those the bot registered (guild first, then global), so a test fails
clearly when the bot did not register what it claims to, and option types come from that schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import payloads
from .interactions import APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT, Interaction, Interactions
from .media import Sticker
from .messages import Messages, NewFile
from .state import Channel, Message, Role, User, World

JSON = dict[str, Any]
FileLike = NewFile | tuple[Any, ...]

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
USER, CHANNEL, ROLE, MENTIONABLE, ATTACHMENT = 6, 7, 8, 9, 11
CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3


class CommandUnavailable(PermissionError):
    """Discord would not let this person use this command here (its default permissions, the server's
    overrides, or a guild-only command in a DM): their client does not even offer it."""


class Actions:
    def __init__(self, world: World, messages: Messages, interactions: Interactions) -> None:
        self.world = world
        self.messages = messages
        self.interactions = interactions

    # ---- messages -------------------------------------------------------------------------

    async def post_message(
        self,
        author: User,
        channel: Channel,
        content: str = "",
        *,
        attachments: Sequence[FileLike] = (),
        reply_to: Message | None = None,
        mention_author: bool = True,
        embeds: Sequence[JSON] = (),
        stickers: Sequence[Sticker] = (),
    ) -> Message:
        """``author`` posts in ``channel``; ``<@id>`` mentions in ``content`` resolve as on Discord."""
        allowed = None if mention_author else {"parse": ["users", "roles", "everyone"], "replied_user": False}
        return await self.messages.create(
            channel,
            author,
            content=content,
            files=[NewFile.coerce(a) for a in attachments],
            embeds=embeds,
            reference_id=reply_to.id if reply_to else None,
            allowed_mentions=allowed,
            message_type=19 if reply_to else 0,
            sticker_items=[s.item() for s in stickers],
        )

    async def forward(self, author: User, message: Message, channel: Channel) -> Message:
        """``author`` forwards ``message`` into ``channel``: a new message whose ``message_snapshots``
        carry the original's content, attachments, embeds and stickers (no ``referenced_message``)."""
        return await self.messages.create(channel, author, forward_of=message)

    async def reply(self, author: User, message: Message, content: str = "", **kwargs: Any) -> Message:
        """``author`` replies to ``message`` (pinging its author unless ``mention_author=False``)."""
        channel = self.world.channels[message.channel_id]
        return await self.post_message(author, channel, content, reply_to=message, **kwargs)

    async def edit_message(self, message: Message, content: str) -> Message:
        """The author edits their own message."""
        return await self.messages.edit(message, {"content": content})

    async def delete_message(self, message: Message) -> None:
        await self.messages.delete(message)

    async def bulk_delete(self, messages: Sequence[Message]) -> None:
        """A moderator (or a purge bot) deletes several messages of one channel at once: MESSAGE_DELETE_BULK."""
        channel = self.world.channels[messages[0].channel_id]
        assert all(m.channel_id == channel.id for m in messages), "a bulk delete is within one channel"
        await self.messages.delete_bulk(channel, list(messages))

    async def react(self, user: User, message: Message, emoji: str) -> None:
        message.reactions.setdefault(emoji, set()).add(user.id)
        channel = self.world.channels[message.channel_id]
        data: JSON = {
            "user_id": str(user.id),
            "channel_id": str(channel.id),
            "message_id": str(message.id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
            guild = self.world.guilds[channel.guild_id]
            data["member"] = payloads.member(guild.members[user.id])
        intent = (1 << 13) if channel.is_dm else (1 << 10)  # DIRECT_/GUILD_MESSAGE_REACTIONS
        await self.messages.gateway.dispatch(
            "MESSAGE_REACTION_ADD", data, guild_id=channel.guild_id, intent=intent
        )

    # ---- commands -------------------------------------------------------------------------

    def invocable_command(self, name: str, kind: int, user: User, channel: Channel) -> JSON:
        """The registered command, if Discord lets ``user`` use it in ``channel`` (else CommandUnavailable)."""
        command = self.find_command(name, kind, channel)
        if not self.world.may_invoke(command, user.id, channel):
            raise CommandUnavailable(f"{user.name} may not use {name!r} in #{channel.name or channel.id}")
        return command

    def find_command(self, name: str, kind: int, channel: Channel) -> JSON:
        scopes = ([channel.guild_id] if channel.guild_id is not None else []) + [None]
        for scope in scopes:
            for command in self.world.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == kind:
                    return command
        known = sorted(c["name"] for scope in scopes for c in self.world.commands.get(scope, []))
        raise LookupError(
            f"the bot registered no command {name!r} of type {kind} here; it registered {known}"
        )

    async def run_slash_command(
        self, user: User, channel: Channel, command: str, options: Mapping[str, Any] | None = None
    ) -> Interaction:
        """``user`` runs ``/command`` (``"group sub"`` for subcommands) with ``options`` by name.

        Option values are plain Python values; attachment options take (filename, bytes[, type]);
        user/channel/role options take the emulator's objects.
        """
        top, *path = command.split()
        schema = self.invocable_command(top, CHAT_INPUT, user, channel)
        resolved: JSON = {}
        leaf_options = self._options(schema, path, dict(options or {}), channel, resolved)
        data: JSON = {"id": schema["id"], "name": top, "type": CHAT_INPUT, "options": leaf_options}
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in schema:
            data["guild_id"] = schema["guild_id"]
        return await self.interactions.create(APPLICATION_COMMAND, user, channel, data)

    def _options(
        self, schema: JSON, path: list[str], values: dict[str, Any], channel: Channel, resolved: JSON
    ) -> list[JSON]:
        declared = {o["name"]: o for o in schema.get("options") or []}
        if path:
            sub = declared.get(path[0])
            if sub is None or sub["type"] not in (SUB_COMMAND, SUB_COMMAND_GROUP):
                raise LookupError(f"{schema['name']!r} has no subcommand {path[0]!r}")
            return [
                {
                    "name": sub["name"],
                    "type": sub["type"],
                    "options": self._options(sub, path[1:], values, channel, resolved),
                }
            ]
        unknown = set(values) - set(declared)
        missing = {n for n, o in declared.items() if o.get("required") and n not in values}
        if unknown or missing:
            raise ValueError(
                f"/{schema['name']}: unknown options {sorted(unknown)}, missing {sorted(missing)}"
            )
        return [
            {
                "name": name,
                "type": declared[name]["type"],
                "value": self._option_value(declared[name]["type"], value, channel, resolved),
            }
            for name, value in values.items()
        ]

    def _option_value(self, kind: int, value: Any, channel: Channel, resolved: JSON) -> Any:
        world = self.world
        if kind == ATTACHMENT:
            attachment = self.messages.new_attachment(channel, NewFile.coerce(value))
            resolved.setdefault("attachments", {})[str(attachment.id)] = payloads.attachment(
                attachment, self.messages.cdn.url_for(attachment)
            )
            return str(attachment.id)
        if kind in (USER, MENTIONABLE) and isinstance(value, User):
            resolved.setdefault("users", {})[str(value.id)] = payloads.user(value)
            guild = world.guild_of(channel)
            if guild is not None and value.id in guild.members:
                member = payloads.member(
                    guild.members[value.id],
                    with_user=False,
                    permissions=world.permissions_in(channel, value.id),
                )
                resolved.setdefault("members", {})[str(value.id)] = member
            return str(value.id)
        if kind in (ROLE, MENTIONABLE) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = payloads.role(value)
            return str(value.id)
        if kind == CHANNEL and isinstance(value, Channel):
            data = payloads.channel(value, world) | {
                "permissions": str(int(world.permissions_in(value, world.bot.id)))
            }
            resolved.setdefault("channels", {})[str(value.id)] = data
            return str(value.id)
        return value

    async def use_message_command(self, user: User, message: Message, command: str) -> Interaction:
        """``user`` right-clicks ``message`` and picks the context-menu entry ``command``."""
        channel = self.world.channels[message.channel_id]
        schema = self.invocable_command(command, MESSAGE_COMMAND, user, channel)
        data: JSON = {
            "id": schema["id"],
            "name": command,
            "type": MESSAGE_COMMAND,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): self.messages.payload(message)}},
        }
        if "guild_id" in schema:
            data["guild_id"] = schema["guild_id"]
        return await self.interactions.create(APPLICATION_COMMAND, user, channel, data)

    async def use_user_command(self, user: User, target: User, channel: Channel, command: str) -> Interaction:
        """``user`` right-clicks ``target`` (in ``channel``) and picks the context-menu entry ``command``."""
        schema = self.invocable_command(command, USER_COMMAND, user, channel)
        resolved: JSON = {}
        self._option_value(USER, target, channel, resolved)
        data: JSON = {
            "id": schema["id"],
            "name": command,
            "type": USER_COMMAND,
            "target_id": str(target.id),
            "resolved": resolved,
        }
        if "guild_id" in schema:
            data["guild_id"] = schema["guild_id"]
        return await self.interactions.create(APPLICATION_COMMAND, user, channel, data)

    # ---- components and modals ------------------------------------------------------------

    async def click_button(self, user: User, message: Message, custom_id: str) -> Interaction:
        """``user`` clicks the button ``custom_id`` on ``message`` (it must be there and enabled)."""
        button = _find_component(message.components, custom_id)
        if button is None or button.get("type") != 2 or button.get("disabled"):
            raise LookupError(f"no enabled button {custom_id!r} on message {message.id}")
        return await self._component(user, message, {"custom_id": custom_id, "component_type": 2})

    async def choose(
        self, user: User, message: Message, custom_id: str, values: Sequence[str]
    ) -> Interaction:
        """``user`` picks ``values`` in the string select ``custom_id`` on ``message``."""
        select = _find_component(message.components, custom_id)
        if select is None or select.get("type") != 3:
            raise LookupError(f"no select menu {custom_id!r} on message {message.id}")
        data = {"custom_id": custom_id, "component_type": 3, "values": list(values)}
        return await self._component(user, message, data)

    async def _component(self, user: User, message: Message, data: JSON) -> Interaction:
        channel = self.world.channels[message.channel_id]
        return await self.interactions.create(MESSAGE_COMPONENT, user, channel, data, message=message)

    async def submit_modal(
        self, user: User, interaction: Interaction, values: Mapping[str, str]
    ) -> Interaction:
        """``user`` fills the modal the bot opened in answer to ``interaction`` and submits it."""
        if interaction.modal is None:
            raise LookupError("the bot did not open a modal for this interaction")
        data = {
            "custom_id": interaction.modal["custom_id"],
            "components": [_filled(c, values) for c in interaction.modal.get("components") or []],
        }
        return await self.interactions.create(
            MODAL_SUBMIT, user, interaction.channel, data, message=interaction.source_message
        )


def _find_component(components: Sequence[JSON], custom_id: str) -> JSON | None:
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        found = _find_component(component.get("components") or [], custom_id)
        if found is not None:
            return found
    return None


def _filled(component: JSON, values: Mapping[str, str]) -> JSON:
    """A modal component as Discord submits it: text inputs carry the typed value."""
    if component.get("type") == 4:
        return {
            "type": 4,
            "custom_id": component["custom_id"],
            "value": values.get(component["custom_id"], ""),
        }
    result = {k: v for k, v in component.items() if k in ("type", "id")}
    if "components" in component:
        result["components"] = [_filled(c, values) for c in component["components"]]
    if "component" in component:
        result["component"] = _filled(component["component"], values)
    return result
