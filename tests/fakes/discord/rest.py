"""The REST API under ``/api/v10``: routes, Discord's permission checks, rate limiting and the request log.

A middleware records every request (unknown routes answer 404 JSON and are recorded too), checks the
bot token, applies :mod:`ratelimit`, and turns :class:`DiscordError` into Discord's JSON error bodies.
Every JSON response carries ``Content-Type: application/json`` exactly, as discord.py requires.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web

from . import errors, payloads
from .cdn import Cdn
from .errors import DiscordError
from .gateway import GUILDS, Gateway
from .interactions import Interactions
from .messages import ABSENT, Messages, NewFile, validate_body
from .ratelimit import RateLimiter
from .records import (
    FilePart,
    RateLimitRecord,
    ReactionRecord,
    Recorder,
    RequestRecord,
    TimeoutRecord,
    TypingRecord,
)
from .state import Channel, Guild, Message, Perm, World, snowflake

_log = logging.getLogger(__name__)

JSON = dict[str, Any]
API_PREFIX = "/api/v10"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CHANNEL_SHARED = {
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
}
_MAJOR_PARAMETERS = ("channel_id", "guild_id", "application_id", "token")
_MAX_TIMEOUT = datetime.timedelta(days=28)
BULK_DELETE_MIN, BULK_DELETE_MAX = 2, 100
BULK_DELETE_MAX_AGE = 14 * 86400  # seconds: older messages must be deleted one by one
BODY = web.RequestKey("discord_body", dict)  # the parsed JSON body (or multipart payload_json)
FILES = web.RequestKey("discord_files", list)  # the multipart file parts


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def no_content() -> web.Response:
    return web.Response(status=204)


class RestApi:
    def __init__(
        self,
        world: World,
        recorder: Recorder,
        gateway: Gateway,
        messages: Messages,
        interactions: Interactions,
        cdn: Cdn,
        limiter: RateLimiter,
        token: str,
        gateway_url: Callable[[], str],
        message_content_granted: Callable[[], bool],
    ) -> None:
        self.world = world
        self.recorder = recorder
        self.gateway = gateway
        self.messages = messages
        self.interactions = interactions
        self.cdn = cdn
        self.limiter = limiter
        self.token = token
        self._gateway_url = gateway_url
        self._content_granted = message_content_granted

    # ---- wiring ---------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/users/@me", self.get_me),
            ("POST", "/users/@me/channels", self.open_dm),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/applications/{application_id}/commands", self.get_commands),
            ("PUT", "/applications/{application_id}/commands", self.put_commands),
            ("POST", "/applications/{application_id}/commands", self.post_command),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self.get_commands),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", self.put_commands),
            ("POST", "/applications/{application_id}/guilds/{guild_id}/commands", self.post_command),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("GET", "/channels/{channel_id}/messages", self.get_messages),
            ("POST", "/channels/{channel_id}/messages", self.send_message),
            ("POST", "/channels/{channel_id}/messages/bulk-delete", self.bulk_delete),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.add_reaction),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self.remove_reaction,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
                self.remove_reaction,
            ),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads", self.start_thread_from_message),
            ("POST", "/channels/{channel_id}/typing", self.typing),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.get_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
            ("PATCH", "/guilds/{guild_id}/members/{user_id}", self.edit_member),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback),
            ("POST", "/webhooks/{application_id}/{token}", self.webhook_followup),
            ("GET", "/webhooks/{application_id}/{token}/messages/{message_id}", self.webhook_get),
            ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}", self.webhook_edit),
            ("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}", self.webhook_delete),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, API_PREFIX + path, handler)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self.cdn.serve)
        app.router.add_get("/gateway", self.gateway.handle)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        resource = request.match_info.route.resource
        unknown = request.match_info.http_exception is not None or resource is None
        route = "" if unknown else resource.canonical.removeprefix(API_PREFIX)  # type: ignore[union-attr]
        record = await self._record(request, route)
        if unknown:
            response = json_response(payloads.error(0, "404: Not Found"), 404)
        else:
            response = await self._handle(request, route, handler)
        record.status = response.status
        if isinstance(response, web.Response) and response.body:
            record.response = (
                json.loads(response.body) if response.content_type == "application/json" else None
            )
        self.recorder.notifier.notify()
        return response

    async def _handle(self, request: web.Request, route: str, handler: Handler) -> web.StreamResponse:
        webhookish = route.startswith(("/webhooks/", "/interactions/"))
        if not webhookish and request.headers.get(hdrs.AUTHORIZATION) != f"Bot {self.token}":
            return json_response(errors.unauthorized().body, 401)
        major = "+".join(request.match_info[k] for k in _MAJOR_PARAMETERS if k in request.match_info)
        decision = self.limiter.check(
            request.method,
            route,
            major,
            channel_shared=(request.method, route) in _CHANNEL_SHARED,
            counts_global=not webhookish,
        )
        if not decision.allowed:
            return self._too_many(request, decision)
        try:
            response = await handler(request)
        except DiscordError as exc:
            response = json_response(exc.body, exc.status)
        response.headers.update(decision.headers)
        return response

    def _too_many(self, request: web.Request, decision: Any) -> web.Response:
        self.recorder.add(
            self.recorder.rate_limits,
            RateLimitRecord(
                request.method,
                request.path,
                decision.bucket,
                decision.scope,
                decision.retry_after,
                decision.is_global,
                time.monotonic(),
            ),
        )
        body = {
            "message": "You are being rate limited.",
            "retry_after": round(decision.retry_after, 3),
            "global": decision.is_global,
        }
        headers = {
            **decision.headers,
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(decision.retry_after))),
        }
        return json_response(body, 429, headers)

    async def _record(self, request: web.Request, route: str) -> RequestRecord:
        """Parse the body once (kept on the request for the handler) and log the request."""
        body: Any = None
        files: list[FilePart] = []
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                data = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":
                    body = json.loads(data)
                elif part.filename:  # type: ignore[union-attr]
                    content_type = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                    files.append(FilePart(part.name or "", part.filename, content_type, bytes(data)))  # type: ignore[union-attr]
        elif request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        request[BODY] = body if body is not None else {}
        request[FILES] = files
        headers = {
            k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in request.headers.items()
        }
        record = RequestRecord(
            request.method,
            request.path.removeprefix(API_PREFIX),
            route,
            dict(request.query),
            headers,
            body,
            files,
        )
        self.recorder.add(self.recorder.requests, record)
        return record

    @staticmethod
    def _new_files(request: web.Request) -> list[NewFile]:
        """Multipart files, with descriptions from ``attachments`` (``files[N]`` pairs with id N)."""
        described = {str(a.get("id")): a for a in request[BODY].get("attachments") or []}
        result = []
        for part in request[FILES]:
            index = part.field.removeprefix("files[").removesuffix("]")
            meta = described.get(index, {})
            result.append(
                NewFile(
                    meta.get("filename", part.filename), part.data, part.content_type, meta.get("description")
                )
            )
        return result

    # ---- lookups and checks ---------------------------------------------------------------

    def _channel(self, request: web.Request) -> Channel:
        channel = self.world.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise errors.unknown("channel")
        return channel

    def _guild(self, request: web.Request) -> Guild:
        guild = self.world.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise errors.unknown("guild")
        return guild

    def _require(self, channel: Channel, needed: Perm) -> None:
        perms = self.world.permissions_in(channel, self.world.bot.id)
        if not perms & Perm.VIEW_CHANNEL:
            raise errors.missing_access()
        if perms & needed != needed:
            raise errors.missing_permissions()

    def _message_json(self, message: Message) -> JSON:
        """A message as REST returns it: without the Message Content grant, others' content is empty."""
        data = self.messages.payload(message)
        if not self.messages.content_exempt(message) and not self._content_granted():
            return payloads.without_content(data)
        return data

    # ---- gateway, users, application ------------------------------------------------------

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self._gateway_url()})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        shards = self.gateway.config.recommended_shards
        return json_response({"url": self._gateway_url(), "shards": shards, "session_start_limit": limit})

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(
            payloads.user(self.world.bot) | {"verified": True, "mfa_enabled": False, "flags": 0}
        )

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise errors.unknown("user")
        return json_response(payloads.user(user))

    async def open_dm(self, request: web.Request) -> web.Response:
        user = self.world.users.get(int(request[BODY].get("recipient_id", 0)))
        if user is None:
            raise errors.unknown("user")
        return json_response(payloads.channel(self.world.dm_channel(user), self.world))

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(
            payloads.application(self.world, message_content_granted=self._content_granted())
        )

    # ---- application commands -------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> int | None:
        if int(request.match_info["application_id"]) != self.world.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        return self._guild(request).id if "guild_id" in request.match_info else None

    def _stored_command(self, data: JSON, guild_id: int | None, existing: JSON | None) -> JSON:
        command = {
            "type": 1,
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            "description": "",
            **data,
            "id": existing["id"] if existing else str(snowflake()),
            "application_id": str(self.world.application_id),
            "version": str(snowflake()),
        }
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.world.commands.get(self._command_scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        old = {(c["name"], c["type"]): c for c in self.world.commands.get(scope, [])}
        new = [self._stored_command(d, scope, old.get((d["name"], d.get("type", 1)))) for d in request[BODY]]
        self.world.commands[scope] = new
        return json_response(new)

    async def post_command(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        data = request[BODY]
        commands = self.world.commands.setdefault(scope, [])
        existing = next(
            (c for c in commands if (c["name"], c["type"]) == (data["name"], data.get("type", 1))), None
        )
        command = self._stored_command(data, scope, existing)
        commands[:] = [c for c in commands if c is not existing] + [command]
        return json_response(command, 200 if existing else 201)

    # ---- channels and messages ------------------------------------------------------------

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if not channel.is_dm:
            self._require(channel, Perm.VIEW_CHANNEL)
        return json_response(payloads.channel(channel, self.world))

    async def get_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(channel, Perm.READ_MESSAGE_HISTORY)
        query = request.query
        limit = max(1, min(100, int(query.get("limit", 50))))
        found = list(reversed(self.world.channel_messages(channel.id)))  # newest first
        if "before" in query:
            found = [m for m in found if m.id < int(query["before"])]
        if "after" in query:
            found = [m for m in found if m.id > int(query["after"])][-limit:]
        if "around" in query:
            around = int(query["around"])
            older = [m for m in found if m.id <= around][: (limit + 1) // 2]
            newer = [m for m in found if m.id > around][-(limit // 2) :] if limit > 1 else []
            found = newer + older
        return json_response([self._message_json(m) for m in found[:limit]])

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(channel, Perm.READ_MESSAGE_HISTORY)
        message = self.messages.get(channel, int(request.match_info["message_id"]))
        return json_response(self._message_json(message))

    async def send_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body: JSON = request[BODY]
        files = self._new_files(request)
        needed = Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES
        self._require(channel, needed | (Perm.ATTACH_FILES if files else Perm(0)))
        validate_body(body, files, creating=True, upload_limit=self.messages.upload_limit)
        reference_id = None
        if body.get("message_reference"):
            history = self.world.permissions_in(channel, self.world.bot.id) & Perm.READ_MESSAGE_HISTORY
            if not channel.is_dm and not history:
                raise DiscordError(400, 160002, "Cannot reply without permission to read message history")
            reference_id = int(body["message_reference"]["message_id"])
            referenced = self.world.messages.get(reference_id)
            fail = body["message_reference"].get("fail_if_not_exists", True)
            if (referenced is None or referenced.deleted) and fail:
                raise errors.invalid_form("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
            if referenced is not None and referenced.channel_id != channel.id:
                code, text = "REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL", "Cannot reply to a message in another channel"
                raise errors.invalid_form("message_reference", code, text)
        message = await self.messages.create(
            channel,
            self.world.bot,
            content=body.get("content") or "",
            files=files,
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            reference_id=reference_id,
            allowed_mentions=body.get("allowed_mentions", ABSENT),
            flags=int(body.get("flags") or 0),
        )
        return json_response(self.messages.payload(message))

    async def edit_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self.messages.get(channel, int(request.match_info["message_id"]))
        if message.author.id != self.world.bot.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        files = self._new_files(request)
        validate_body(request[BODY], files, creating=False, upload_limit=self.messages.upload_limit)
        message = await self.messages.edit(message, request[BODY], files)
        return json_response(self.messages.payload(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self.messages.get(channel, int(request.match_info["message_id"]))
        if message.author.id != self.world.bot.id:
            if channel.is_dm:
                raise DiscordError(403, 50003, "Cannot execute action on a DM channel")
            self._require(channel, Perm.MANAGE_MESSAGES)
        await self.messages.delete(message)
        return no_content()

    async def bulk_delete(self, request: web.Request) -> web.Response:
        """Delete 2-100 messages younger than 14 days at once (Manage Messages, even for the bot's own)."""
        channel = self._channel(request)
        if channel.is_dm:
            raise DiscordError(403, 50003, "Cannot execute action on a DM channel")
        self._require(channel, Perm.MANAGE_MESSAGES)
        ids = [int(i) for i in request[BODY].get("messages") or []]
        if not BULK_DELETE_MIN <= len(ids) <= BULK_DELETE_MAX:
            raise errors.invalid_form(
                "messages",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between {BULK_DELETE_MIN} and {BULK_DELETE_MAX} in length.",
            )
        found = [
            m
            for m in dict.fromkeys(self.world.messages.get(i) for i in ids)
            if m is not None and m.channel_id == channel.id and not m.deleted and not m.ephemeral
        ]
        if any(time.time() - m.created_at > BULK_DELETE_MAX_AGE for m in found):
            raise DiscordError(400, 50034, "You can only bulk delete messages that are under 14 days old.")
        await self.messages.delete_bulk(channel, found)
        return no_content()

    async def _reaction(self, request: web.Request, added: bool) -> web.Response:
        channel = self._channel(request)
        message = self.messages.get(channel, int(request.match_info["message_id"]))
        emoji = request.match_info["emoji"]
        user_id = int(request.match_info.get("user_id", self.world.bot.id))
        if added:
            self._require(channel, Perm.ADD_REACTIONS | Perm.READ_MESSAGE_HISTORY)
            message.reactions.setdefault(emoji, set()).add(user_id)
        else:
            if user_id != self.world.bot.id:
                self._require(channel, Perm.MANAGE_MESSAGES)
            message.reactions.get(emoji, set()).discard(user_id)
        self.recorder.add(
            self.recorder.reactions, ReactionRecord(message.id, user_id, emoji, added, time.monotonic())
        )
        return no_content()

    async def add_reaction(self, request: web.Request) -> web.Response:
        return await self._reaction(request, added=True)

    async def remove_reaction(self, request: web.Request) -> web.Response:
        return await self._reaction(request, added=False)

    async def start_thread_from_message(self, request: web.Request) -> web.Response:
        """A public thread whose id is the message's (its starter), owned by the bot; THREAD_CREATE."""
        channel = self._channel(request)
        message = self.messages.get(channel, int(request.match_info["message_id"]))
        if channel.is_thread or channel.is_dm:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        self._require(channel, Perm.CREATE_PUBLIC_THREADS | Perm.READ_MESSAGE_HISTORY)
        name = str(request[BODY].get("name") or "")
        if not 1 <= len(name) <= 100:
            raise errors.invalid_form("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if message.id in self.world.channels:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread = self.world.add_thread(channel, name, owner=self.world.bot, thread_id=message.id)
        data = payloads.channel(thread, self.world) | {"newly_created": True}
        await self.gateway.dispatch("THREAD_CREATE", data, guild_id=thread.guild_id, intent=GUILDS)
        return json_response(payloads.channel(thread, self.world), 201)

    async def typing(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if not channel.is_dm:
            self._require(channel, Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES)
        self.recorder.add(self.recorder.typing, TypingRecord(channel.id, self.world.bot.id, time.monotonic()))
        return no_content()

    # ---- guilds and members ---------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        data = payloads.guild_create(guild, self.world)
        for key in ("members", "channels", "threads", "voice_states", "presences"):
            data.pop(key)
        return json_response(data)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response(
            [payloads.channel(self.world.channels[c], self.world) for c in guild.channel_ids]
        )

    async def get_roles(self, request: web.Request) -> web.Response:
        return json_response([payloads.role(r) for r in self._guild(request).roles.values()])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise errors.unknown("member")
        return json_response(payloads.member(member))

    async def edit_member(self, request: web.Request) -> web.Response:
        """Only the timeout field (``communication_disabled_until``) is modelled."""
        guild = self._guild(request)
        member = guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise errors.unknown("member")
        body: JSON = request[BODY]
        if "communication_disabled_until" in body:
            bot_perms = self.world.base_permissions(guild, self.world.bot.id)
            target_perms = self.world.base_permissions(guild, member.user.id)
            if not bot_perms & Perm.MODERATE_MEMBERS or target_perms & Perm.ADMINISTRATOR:
                raise errors.missing_permissions()
            # Discord's hierarchy: nobody acts on the owner, and the bot's highest role must be above the target's.
            if member.user.id == guild.owner_id or not self.world.outranks(guild, self.world.bot.id, member.user.id):
                raise errors.missing_permissions()
            until = body["communication_disabled_until"]
            if until is not None:
                moment = datetime.datetime.fromisoformat(until)
                if moment - datetime.datetime.now(datetime.UTC) > _MAX_TIMEOUT:
                    raise errors.invalid_form(
                        "communication_disabled_until",
                        "BASE_TYPE_BAD_DATETIME",
                        "Timeout cannot exceed 28 days.",
                    )
            member.communication_disabled_until = until
            reason = request.headers.get("X-Audit-Log-Reason")
            record = TimeoutRecord(guild.id, member.user.id, until, reason, time.monotonic())
            self.recorder.add(self.recorder.timeouts, record)
        data = payloads.member(member)
        await self.gateway.dispatch(
            "GUILD_MEMBER_UPDATE", data | {"guild_id": str(guild.id)}, guild_id=guild.id, intent=1 << 1
        )
        return json_response(data)

    # ---- interactions and their webhooks --------------------------------------------------

    async def interaction_callback(self, request: web.Request) -> web.Response:
        result = await self.interactions.callback(
            int(request.match_info["interaction_id"]),
            request.match_info["token"],
            request[BODY],
            self._new_files(request),
            with_response=request.query.get("with_response") in ("1", "true", "True"),
        )
        return no_content() if result is None else json_response(result)

    def _webhook_interaction(self, request: web.Request) -> Any:
        return self.interactions.by_webhook(
            int(request.match_info["application_id"]), request.match_info["token"]
        )

    async def webhook_followup(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = await self.interactions.followup(interaction, request[BODY], self._new_files(request))
        wait = request.query.get("wait") in ("1", "true", "True")
        return json_response(self.messages.payload(message)) if wait else no_content()

    async def webhook_get(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self.interactions.webhook_message(interaction, request.match_info["message_id"])
        return json_response(self.messages.payload(message))

    async def webhook_edit(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = await self.interactions.edit_message(
            interaction, request.match_info["message_id"], request[BODY], self._new_files(request)
        )
        return json_response(self.messages.payload(message))

    async def webhook_delete(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        await self.messages.delete(
            self.interactions.webhook_message(interaction, request.match_info["message_id"])
        )
        return no_content()
