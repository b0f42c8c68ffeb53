"""Interactions: INTERACTION_CREATE payloads, callbacks under Discord's deadlines, @original, followups."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import errors, payloads
from .gateway import Gateway
from .messages import EPHEMERAL, LOADING, Messages, NewFile, validate_body
from .records import CallbackRecord, Recorder
from .state import Channel, Message, User, World, snowflake

JSON = dict[str, Any]

APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5

MESSAGE_RESPONSE = 4
DEFERRED_MESSAGE = 5
DEFERRED_UPDATE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9


@dataclass
class InteractionConfig:
    ack_deadline: float = 3.0  # seconds to respond or defer
    token_ttl: float = 15 * 60.0  # life of the interaction token (webhook routes)
    attachment_size_limit: int = 10 * 1024 * 1024


@dataclass(eq=False)
class Interaction:
    """One interaction a person triggered, and everything the bot did with it."""

    id: int
    token: str
    type: int
    user: User
    channel: Channel
    payload: JSON
    created: float = field(default_factory=time.monotonic)
    source_message: Message | None = None  # the message a component sits on
    callbacks: list[CallbackRecord] = field(default_factory=list)
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)
    modal: JSON | None = None
    autocomplete_choices: list[JSON] | None = None

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def callback_types(self) -> list[int]:
        return [c.type for c in self.callbacks]

    @property
    def ephemeral(self) -> bool:
        """Whether the first response was ephemeral."""
        return bool(self.callbacks) and self.callbacks[0].ephemeral

    @property
    def original_history(self) -> list[str]:
        """Every content ``@original`` has had, in order; a deferred response starts with ""."""
        return self.original.history if self.original is not None else []


class Interactions:
    def __init__(
        self,
        world: World,
        recorder: Recorder,
        gateway: Gateway,
        messages: Messages,
        config: InteractionConfig,
    ) -> None:
        self.world = world
        self.recorder = recorder
        self.gateway = gateway
        self.messages = messages
        self.config = config
        self.all: list[Interaction] = []
        self._by_id: dict[int, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}

    # ---- creation -------------------------------------------------------------------------

    async def create(
        self, type_: int, user: User, channel: Channel, data: JSON, *, message: Message | None = None
    ) -> Interaction:
        world = self.world
        guild = world.guild_of(channel)
        interaction_id = snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(world.application_id),
            "type": type_,
            "data": data,
            "token": token,
            "version": 1,
            "channel": payloads.channel(channel, world),
            "channel_id": str(channel.id),
            "app_permissions": str(int(world.permissions_in(channel, world.bot.id))),
            "locale": user.locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.config.attachment_size_limit,
        }
        if guild is not None:
            perms = world.permissions_in(channel, user.id)
            payload |= {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                "guild_locale": guild.preferred_locale,
                "member": payloads.member(guild.members[user.id], permissions=perms),
                "authorizing_integration_owners": {"0": str(guild.id)},
                "context": 0,
            }
        else:
            payload |= {
                "user": payloads.user(user),
                "authorizing_integration_owners": {"0": "0"},
                "context": 1,
            }
        if message is not None:
            payload["message"] = self.messages.payload(message)
        interaction = Interaction(
            interaction_id, token, type_, user, channel, payload, source_message=message
        )
        self.all.append(interaction)
        self._by_id[interaction_id] = interaction
        self._by_token[token] = interaction
        await self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return interaction

    # ---- callback -------------------------------------------------------------------------

    async def callback(
        self, interaction_id: int, token: str, body: JSON, files: Sequence[NewFile], with_response: bool
    ) -> JSON | None:
        interaction = self._by_id.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise errors.unknown("interaction")
        if interaction.acknowledged:
            raise errors.DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - interaction.created > self.config.ack_deadline:
            raise errors.unknown("interaction")
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        message = await self._respond(interaction, kind, data, files)
        interaction.callbacks.append(CallbackRecord(kind, data, time.monotonic()))
        self.recorder.notifier.notify()
        if not with_response:
            return None
        summary: JSON = {"id": str(interaction.id), "type": interaction.type}
        result: JSON = {"interaction": summary}
        if message is not None:
            summary |= {
                "response_message_id": str(message.id),
                "response_message_loading": bool(message.flags & LOADING),
                "response_message_ephemeral": message.ephemeral,
            }
            result["resource"] = {"type": kind, "message": self.messages.payload(message)}
        elif kind in (MODAL, AUTOCOMPLETE_RESULT, DEFERRED_UPDATE):
            result["resource"] = {"type": kind}
        return result

    async def _respond(
        self, interaction: Interaction, kind: int, data: JSON, files: Sequence[NewFile]
    ) -> Message | None:
        on_message = interaction.source_message is not None
        if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and not on_message:
            raise errors.DiscordError(
                400, 40043, "Interaction response type is invalid for this interaction."
            )
        if kind == MODAL and interaction.type == MODAL_SUBMIT:
            raise errors.DiscordError(
                400, 40043, "Interaction response type is invalid for this interaction."
            )
        if kind == MESSAGE_RESPONSE:
            validate_body(data, files, creating=True, upload_limit=self.messages.upload_limit)
            interaction.original = await self._bot_message(interaction, data, files)
            return interaction.original
        if kind == DEFERRED_MESSAGE:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            interaction.original = await self._bot_message(interaction, {"flags": flags}, ())
            return interaction.original
        if kind == DEFERRED_UPDATE:
            interaction.original = interaction.source_message
            return None
        if kind == UPDATE_MESSAGE:
            validate_body(data, files, creating=False, upload_limit=self.messages.upload_limit)
            assert interaction.source_message is not None
            interaction.original = await self.messages.edit(interaction.source_message, data, files)
            return interaction.original
        if kind == MODAL:
            interaction.modal = data
            return None
        if kind == AUTOCOMPLETE_RESULT:
            interaction.autocomplete_choices = list(data.get("choices") or [])
            return None
        raise errors.invalid_form(
            "type", "BASE_TYPE_CHOICES", f"Value must be one of (4, 5, 6, 7, 8, 9); got {kind}."
        )

    async def _bot_message(self, interaction: Interaction, data: JSON, files: Sequence[NewFile]) -> Message:
        message_type = 20 if interaction.type == APPLICATION_COMMAND else 0
        return await self.messages.create(
            interaction.channel,
            self.world.bot,
            content=data.get("content") or "",
            files=files,
            embeds=data.get("embeds") or [],
            components=data.get("components") or [],
            allowed_mentions=data.get("allowed_mentions"),
            flags=int(data.get("flags") or 0),
            webhook_id=self.world.application_id,
            interaction_id=interaction.id,
            message_type=message_type,
        )

    # ---- webhook routes -------------------------------------------------------------------

    def by_webhook(self, application_id: int, token: str) -> Interaction:
        interaction = self._by_token.get(token)
        if interaction is None or application_id != self.world.application_id:
            raise errors.unknown("webhook")
        if time.monotonic() - interaction.created > self.config.token_ttl:
            raise errors.DiscordError(401, 50027, "Invalid Webhook Token")
        return interaction

    def webhook_message(self, interaction: Interaction, message_id: str) -> Message:
        """``@original`` or one of the followups, as the webhook routes address them."""
        if message_id == "@original":
            if interaction.original is None or interaction.original.deleted:
                raise errors.unknown("message")
            return interaction.original
        for message in interaction.followups:
            if str(message.id) == message_id and not message.deleted:
                return message
        raise errors.unknown("message")

    async def edit_message(
        self, interaction: Interaction, message_id: str, body: JSON, files: Sequence[NewFile]
    ) -> Message:
        message = self.webhook_message(interaction, message_id)
        validate_body(body, files, creating=False, upload_limit=self.messages.upload_limit)
        return await self.messages.edit(message, body, files)

    async def followup(self, interaction: Interaction, body: JSON, files: Sequence[NewFile]) -> Message:
        if not interaction.acknowledged:
            raise errors.unknown("webhook")
        validate_body(body, files, creating=True, upload_limit=self.messages.upload_limit)
        message = await self._bot_message(interaction, body, files)
        interaction.followups.append(message)
        return message
