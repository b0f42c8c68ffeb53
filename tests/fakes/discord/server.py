"""``DiscordEmulator``: the aiohttp server on 127.0.0.1 (random port), its lifecycle, records and waits.

The emulator *is* the test-facing facade: it inherits the people-doing-things methods from
:class:`~.actions.Actions` and adds URLs, world shortcuts, gateway controls and async waits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import yarl
from aiohttp import web

from . import payloads
from .actions import Actions
from .cdn import Cdn
from .gateway import GUILDS, Gateway, GatewayConfig
from .interactions import InteractionConfig, Interactions
from .media import MediaProxy, gif_stickers_at
from .messages import Messages
from .ratelimit import RateLimitConfig, RateLimiter
from .records import MentionRecord, Recorder, RequestRecord
from .rest import RestApi
from .standard import standard_world
from .state import NO_PERMISSIONS, Channel, Guild, Message, Perm, Role, User, World

_log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class EmulatorConfig:
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    interactions: InteractionConfig = field(default_factory=InteractionConfig)
    attachment_url_ttl: float = 24 * 3600.0
    upload_limit: int = 10 * 1024 * 1024
    unfurl_delay: float = 0.2  # seconds until Discord adds a posted link's preview (MESSAGE_UPDATE)


class DiscordEmulator(Actions):
    """A local Discord (gateway + REST + CDN) for the real discord.py client.

    ``async with DiscordEmulator() as discord:`` starts it with :func:`standard_world` unless a
    ``world`` is given. Point discord.py at it with :meth:`point_discord_py` (in-process) or
    :meth:`environment` (a bot subprocess).
    """

    def __init__(self, world: World | None = None, config: EmulatorConfig | None = None) -> None:
        self.world = world or standard_world()
        self.config = config or EmulatorConfig()
        self.bot_token = _token_for(self.world.bot.id)
        self.records = Recorder()
        self.cdn = Cdn("http://127.0.0.1", self.config.attachment_url_ttl)
        self.media = MediaProxy()  # link previews, stickers, custom emoji (see media.py)
        self.gateway = Gateway(
            self.world, self.records, self.config.gateway, self.bot_token, lambda: self.ws_url
        )
        messages = Messages(self.world, self.records, self.gateway, self.cdn, self.config.upload_limit)
        interactions = Interactions(
            self.world, self.records, self.gateway, messages, self.config.interactions
        )
        super().__init__(self.world, messages, interactions)
        self.limiter = RateLimiter(self.config.rate_limits)
        self.rest = RestApi(
            self.world,
            self.records,
            self.gateway,
            messages,
            interactions,
            self.cdn,
            self.limiter,
            self.bot_token,
            lambda: self.ws_url,
            lambda: self.config.gateway.message_content_granted,
        )
        self._runner: web.AppRunner | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.port = 0

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self.rest.middleware], client_max_size=64 * 1024 * 1024)
        self.rest.add_routes(app)
        self.media.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.cdn.base_url = self.media.base_url = self.base_url
        _log.info("Discord emulator listening on %s", self.base_url)

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self.gateway.shutdown()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---- where the bot connects -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """For ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def gateway_url(self) -> yarl.URL:
        """For ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``."""
        return yarl.URL(self.ws_url)

    @property
    def bot_user(self) -> User:
        return self.world.bot

    @property
    def application_id(self) -> int:
        return self.world.application_id

    def environment(self) -> dict[str, str]:
        """Variables a bot subprocess needs (names as in ``bot/settings.py``)."""
        return {
            "DISCORD_TOKEN": self.bot_token,
            "DISCORD_API_BASE": self.api_base,
            "DISCORD_GATEWAY_URL": self.ws_url,
        }

    @contextlib.contextmanager
    def point_discord_py(self) -> Iterator[None]:
        """Point this process's discord.py at the emulator, its media proxy included (restored on exit)."""
        import discord.asset
        import discord.gateway
        import discord.http

        old = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self.gateway_url
        discord.asset.Asset.BASE = self.base_url  # stickers and emoji are served by the emulator's media proxy
        try:
            with gif_stickers_at(self.base_url):
                yield
        finally:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, discord.asset.Asset.BASE = old

    @contextlib.asynccontextmanager
    async def running(self, client: Any, timeout: float = 10.0) -> AsyncIterator[Any]:  # noqa: ASYNC109
        """Run a discord.py ``client`` (in this process) against the emulator for the block.

        Enters once the bot's gateway session is up and the client has every guild its sessions
        receive (all of them, unless it runs only some shards) in its cache; a
        login or IDENTIFY failure (bad token, disallowed intents) is raised here. On exit the client
        is closed and its task awaited.
        """
        with self.point_discord_py():
            task = asyncio.create_task(client.start(self.bot_token))
            try:
                await self.wait_for(
                    lambda: (
                        task.done()
                        or (
                            self.gateway.connected_sessions
                            and all(client.get_guild(g) for g in self.world.guilds if _runs_shard_of(client, g))
                        )
                    ),
                    timeout,
                    "bot up with its guilds cached",
                )
                if task.done():
                    task.result()
                yield client
            finally:
                await client.close()
                await asyncio.wait_for(task, timeout)

    # ---- world shortcuts ------------------------------------------------------------------

    def guild(self, name: str | None = None) -> Guild:
        """The guild called ``name``, or the first one."""
        return self.world.guild_named(name) if name else next(iter(self.world.guilds.values()))

    def channel(self, name: str, guild: Guild | None = None) -> Channel:
        return self.world.channel_named(name, guild)

    def user(self, name: str) -> User:
        return self.world.user_named(name)

    def dm(self, user: User) -> Channel:
        return self.world.dm_channel(user)

    def set_bot_permissions(
        self, permissions: Perm, guild: Guild | None = None, *, dispatch: bool = True
    ) -> asyncio.Task[None] | None:
        """Replace the permissions of the bot's managed role and send GUILD_ROLE_UPDATE, as Discord does.

        Synchronous, so it also works before the bot runs. Returns the task sending the event (None
        when nothing is sent); the bot's cache changes once discord.py has read it, so wait on the
        bot's side (``await emulator.wait_for(lambda: not me.guild_permissions.manage_messages)``).
        ``dispatch=False`` sends nothing: the bot keeps acting on its cached permissions, as in the
        moment before the event reaches it.
        """
        return self._roles_updated(self.world.set_bot_permissions(guild or self.guild(), permissions), dispatch)

    def set_role_permissions(
        self, role: Role, permissions: Perm, *, dispatch: bool = True
    ) -> asyncio.Task[None] | None:
        """An admin edits ``role``'s permissions (Server Settings > Roles): GUILD_ROLE_UPDATE, as
        :meth:`set_bot_permissions` (same return, same ``dispatch``). Interactions carry the new
        permissions at once either way: Discord resolves them for each one."""
        return self._roles_updated(self.world.set_role_permissions(role, permissions), dispatch)

    def _roles_updated(self, roles: list[Role], dispatch: bool) -> asyncio.Task[None] | None:
        if not dispatch or not roles:
            return None
        return self._in_background(
            *(
                self.gateway.dispatch(
                    "GUILD_ROLE_UPDATE", payloads.role_update(r), guild_id=r.guild_id, intent=GUILDS
                )
                for r in roles
            )
        )

    def set_overwrite(
        self,
        channel: Channel,
        target: Role | User,
        *,
        allow: Perm = NO_PERMISSIONS,
        deny: Perm = NO_PERMISSIONS,
        dispatch: bool = True,
    ) -> asyncio.Task[None] | None:
        """Set (both zero: remove) ``target``'s permission overwrite on ``channel`` and send CHANNEL_UPDATE.

        Returns the sending task like :meth:`set_bot_permissions`; ``dispatch=False`` sends nothing.
        """
        self.world.overwrite(channel, target, allow=allow, deny=deny)
        if not dispatch:
            return None
        data = payloads.channel(channel, self.world)
        return self._in_background(
            self.gateway.dispatch("CHANNEL_UPDATE", data, guild_id=channel.guild_id, intent=GUILDS)
        )

    async def delete_channel(self, channel: Channel) -> None:
        """An admin deletes a channel or a thread: it and its messages are gone at once, announced by one
        THREAD_DELETE (a thread) or CHANNEL_DELETE (any other channel; its threads go with it), with no
        MESSAGE_DELETE for each message, as on Discord."""
        assert not channel.is_dm, "a DM channel is not deleted"
        if channel.is_thread:
            event = "THREAD_DELETE"
            data: dict[str, Any] = {
                "id": str(channel.id), "guild_id": str(channel.guild_id),
                "parent_id": str(channel.parent_id), "type": int(channel.type),
            }
        else:
            event, data = "CHANNEL_DELETE", payloads.channel(channel, self.world)
        gone = {channel.id} | {c.id for c in self.world.channels.values() if c.parent_id == channel.id}
        for channel_id in gone:
            del self.world.channels[channel_id]
        for message in self.world.messages.values():
            if message.channel_id in gone:
                message.deleted = True
        self.records.notifier.notify()
        await self.gateway.dispatch(event, data, guild_id=channel.guild_id, intent=GUILDS)

    def set_command_permission(
        self,
        command: str,
        target: Role | User | Guild,
        allowed: bool | None,
        *,
        kind: int = 1,
        guild: Guild | None = None,
    ) -> None:
        """What a server admin sets in Server Settings > Integrations: let ``target`` (a role, a member,
        or the guild: @everyone) use ``command`` or not, above its default permissions; ``None`` removes
        the override. ``kind``: 1 slash command, 2 user menu, 3 message menu. No event is sent (the bot
        is not told; Discord's clients enforce it)."""
        guild = guild or self.guild()
        channel = self.world.channels[guild.channel_ids[0]]
        schema = self.find_command(command, kind, channel)
        overrides = guild.command_permissions.setdefault(str(schema["id"]), {})
        if allowed is None:
            overrides.pop(target.id, None)
        else:
            overrides[target.id] = allowed

    def set_components(self, message: Message, components: list[dict[str, Any]]) -> None:
        """Replace what Discord stores as ``message``'s components, with no event and no revision.

        For a message as it was sent earlier (e.g. by another build of the bot): a bot-authored
        message in one guild whose button ``custom_id`` names another guild, then ``click_button``.
        Discord only delivers custom_ids present on the message, so this is how such a click is made.
        """
        message.components = [dict(c) for c in components]

    async def post_message(self, *args: Any, **kwargs: Any) -> Message:
        """As :meth:`Actions.post_message`; a link registered with ``media.link`` is then unfurled
        after ``config.unfurl_delay`` seconds, as Discord does."""
        message = await super().post_message(*args, **kwargs)
        previews = self.media.previews_for(message.content)
        if previews:
            self._in_background(self._unfurl_later(message, previews))
        return message

    async def edit_message(self, message: Message, content: str) -> Message:
        """As :meth:`Actions.edit_message`; a link registered with ``media.link`` that the edit adds is
        then unfurled after ``config.unfurl_delay`` seconds, as Discord does (links kept are not)."""
        before = self.media.previews_for(message.content)
        edited = await super().edit_message(message, content)
        added = [embed for embed in self.media.previews_for(content) if embed not in before]
        if added:
            self._in_background(self._unfurl_later(edited, added))
        return edited

    async def _unfurl_later(self, message: Message, embeds: list[dict[str, Any]]) -> None:
        await asyncio.sleep(self.config.unfurl_delay)
        if not message.deleted:
            await self.unfurl(message, embeds)

    async def unfurl(self, message: Message, embeds: list[dict[str, Any]]) -> Message:
        """Discord adds ``embeds`` (link previews) to ``message`` now: a MESSAGE_UPDATE."""
        return await self.messages.add_embeds(message, embeds)

    def _in_background(self, *sends: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        """Run ``sends`` in order in a task kept until done (awaited on :meth:`close`)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop, so no bot session to tell
            for send in sends:
                send.close()
            return None

        async def run() -> None:
            for send in sends:
                await send

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ---- records --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        return self.records.requests

    @property
    def rate_limits(self) -> list[Any]:
        return self.records.rate_limits

    @property
    def unknown_routes(self) -> list[RequestRecord]:
        return self.records.unknown_routes

    @property
    def refusals(self) -> list[RequestRecord]:
        """Every REST request answered with a 4xx (429 included); see ``RequestRecord.error_code``."""
        return self.records.refusals

    @property
    def interactions_seen(self) -> list[Any]:
        return self.interactions.all

    def messages_in(
        self, channel: Channel, *, author: User | None = None, include_deleted: bool = False
    ) -> list[Message]:
        """Messages of ``channel`` oldest first, optionally only by ``author``."""
        return [
            m
            for m in self.world.messages.values()
            if m.channel_id == channel.id
            and (include_deleted or not m.deleted)
            and (author is None or m.author.id == author.id)
        ]

    def bot_messages(self, channel: Channel) -> list[Message]:
        return self.messages_in(channel, author=self.world.bot)

    @property
    def deleted_messages(self) -> list[Message]:
        return [m for m in self.world.messages.values() if m.deleted]

    def mentions_for(self, message: Message) -> list[MentionRecord]:
        """What each send/edit of ``message`` would have pinged, in order."""
        return [r for r in self.records.mentions if r.message_id == message.id]

    # ---- waits ----------------------------------------------------------------------------

    async def wait_for(self, condition: Callable[[], T], timeout: float = 5.0, what: str = "") -> T:  # noqa: ASYNC109
        """Wait until ``condition()`` is truthy and return its value (``TimeoutError`` otherwise)."""
        return await self.records.notifier.wait_for(condition, timeout, what)

    async def wait_until_connected(self, sessions: int = 1, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until ``sessions`` bot sessions are connected and have their GUILD_CREATEs."""
        await self.wait_for(
            lambda: len(self.gateway.connected_sessions) >= sessions, timeout, "bot connected"
        )

    async def wait_for_message(
        self,
        channel: Channel,
        predicate: Callable[[Message], bool] | None = None,
        *,
        author: User | None = None,
        after: Message | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Message:
        """The first message in ``channel`` by ``author`` (default: the bot), newer than ``after``, matching
        ``predicate`` (messages already there count: the reply may have come before the wait)."""
        who = author or self.world.bot

        def find() -> Message | None:
            for m in self.messages_in(channel, author=who):
                if (after is None or m.id > after.id) and (predicate is None or predicate(m)):
                    return m
            return None

        return await self.wait_for(find, timeout, f"message in #{channel.name or channel.id}")

    async def wait_for_edit_count(self, message: Message, count: int, timeout: float = 5.0) -> Message:  # noqa: ASYNC109
        await self.wait_for(lambda: message.edit_count >= count, timeout, f"{count} edits of {message.id}")
        return message

    async def wait_for_content(
        self,
        message: Message,
        predicate: Callable[[str], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> str:
        return await self.wait_for(
            lambda: message.content if predicate(message.content) else "", timeout, f"content of {message.id}"
        )

    async def wait_for_response(self, interaction: Any, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait until the bot acknowledged ``interaction``; returns it."""
        await self.wait_for(lambda: interaction.acknowledged, timeout, "interaction response")
        return interaction

    async def wait_for_answer(self, interaction: Any, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait until the bot answered ``interaction``: a form opened, or a response with content or
        embeds (a deferred one once its answer is edited in); returns it."""
        await self.wait_for_response(interaction, timeout)

        def answered() -> bool:
            original = interaction.original
            return bool(interaction.modal or (original is not None and (original.content or original.embeds)))

        await self.wait_for(answered, timeout, "interaction answer")
        return interaction

    async def wait_for_request(
        self,
        method: str,
        route: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[RequestRecord]:
        """Wait for ``count`` requests to ``route`` (a template such as ``/channels/{channel_id}/typing``)."""
        return await self.wait_for(
            lambda: (found := self.records.requests_to(method, route)) and len(found) >= count and found,
            timeout,
            f"{count}x {method} {route}",
        )

    # ---- gateway controls -----------------------------------------------------------------

    async def force_reconnect(self) -> None:
        """Send op 7 RECONNECT; the bot resumes its session."""
        await self.gateway.request_reconnect()

    async def close_gateway(self, code: int = 4000, message: str = "") -> None:
        await self.gateway.close_connections(code, message)

    async def invalidate_sessions(self, resumable: bool = False) -> None:
        await self.gateway.invalidate_sessions(resumable)


def _runs_shard_of(client: Any, guild_id: int) -> bool:
    """Whether ``client`` (a discord.py Client or AutoShardedClient) runs the shard of ``guild_id``."""
    count = client.shard_count
    if not count:
        return True
    ids = getattr(client, "shard_ids", None)
    if ids is None:
        single = getattr(client, "shard_id", None)
        ids = range(count) if single is None else [single]
    return (guild_id >> 22) % count in ids


def _token_for(bot_id: int) -> str:
    head = base64.urlsafe_b64encode(str(bot_id).encode()).decode().rstrip("=")
    return f"{head}.{secrets.token_urlsafe(4)}.{secrets.token_urlsafe(27)}"
