"""The bot subclass: builds the services once, loads the cogs, owns shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import pkgutil
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.conversation import ChatService, MemoryLimits
from bot.gate import Gate
from bot.guard import INTERACTION_CLAIM_WAIT_SECONDS, Claims, Guard, Limits, Work, feature_max_tokens
from bot.guild import Defaults, GuildSettingsService, SharedSettings
from bot.images import (
    DownloadGate,
    ImageWorker,
    MediaFetcher,
    MemoryGate,
    SharedImages,
    return_large_frees_to_the_os,
)
from bot.images.from_discord import MessageMedia
from bot.metrics import Metrics
from bot.moderation import ModerationService
from bot.monitoring import discord_trace, status_server
from bot.replies import ChannelPacer, InteractionSink, LiveRegistry, Steering, Withdrawal, message_deleter
from bot.settings import Settings
from bot.status_server import StatusServer
from bot.store import Store, StoreOptions, open_store
from bot.tracking import TrackedWork
from bot.vlm import VisionClient

log = logging.getLogger(__name__)


def _extensions() -> tuple[str, ...]:
    """Every module in `cogs/` is a feature; each ends with `async def setup(bot)`.

    Found by location, not imported here: `bot/` never imports `cogs` (discord.py loads them).
    """
    spec = importlib.util.find_spec("cogs")
    assert spec is not None and spec.submodule_search_locations is not None
    return tuple(f"cogs.{module.name}" for module in pkgutil.iter_modules(spec.submodule_search_locations))


EXTENSIONS = _extensions()
PURGE_EVERY_SECONDS = 3600
SHUTDOWN_GRACE_SECONDS = 10.0
WITHOUT_MESSAGE_CONTENT = (
    "Running without the Message Content intent: Discord empties every server message that does not mention "
    "the bot (its text, attachments, link previews and forwarded messages). Slash commands, context menus "
    "(Describe image, Check image), DMs and mentions work; automatic descriptions in describe channels and "
    "the moderation of watched channels see only stickers, free-response channels answer only mentions, and "
    "a question cannot see \"the image above\". Enable the intent in the Developer Portal "
    "(Bot > Privileged Gateway Intents)."
)


class Glimpse(commands.AutoShardedBot):
    """The bot. Cogs reach the shared services as ``self.bot.<service>``.

    Auto-sharded: ``SHARD_COUNT`` / ``SHARD_IDS`` choose this process's shards; unset, Discord's
    recommended count runs in this one process.
    """

    vision: VisionClient
    images: ImageWorker
    downloads: DownloadGate
    shared_images: SharedImages
    media: MessageMedia
    pacer: ChannelPacer
    store: Store
    chat: ChatService
    moderation: ModerationService
    live: LiveRegistry
    claims: Claims
    guard: Guard
    gate: Gate
    server_settings: GuildSettingsService
    steering: Steering
    withdrawal: Withdrawal

    def __init__(
        self,
        settings: Settings,
        *,
        message_content: bool = True,
        sync_commands: bool = False,
        started_at: float | None = None,
    ) -> None:
        """``started_at``: when this process started (``time.monotonic()``), for a process that may
        follow another one on the same token: until a pacing window has passed since then, every
        channel's window counts as used (the earlier process may have used it just before it died)."""
        intents = discord.Intents.default()
        intents.message_content = message_content
        self.metrics = Metrics()
        super().__init__(
            http_trace=discord_trace(self.metrics),
            command_prefix=commands.when_mentioned,
            intents=intents,
            # Model output is untrusted: nothing the bot sends may ping anyone, by default everywhere.
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            owner_ids=set(settings.owner_ids) or None,
            shard_count=settings.shard_count,
            shard_ids=list(settings.shard_ids) if settings.shard_ids is not None else None,
        )
        self.settings = settings
        self.work = TrackedWork()  # the bot's own work in progress, waited for on shutdown
        self.sync_commands = sync_commands
        self.started_at = started_at
        self.health_server: StatusServer | None = None  # /healthz and /metrics, when METRICS_PORT is set
        self._background: list[asyncio.Task[None]] = []
        self.tree.on_error = self.on_app_command_error

    async def setup_hook(self) -> None:
        settings = self.settings
        self.vision = VisionClient(
            api_key=settings.vlm_api_key.reveal(),
            base_url=settings.vlm_base_url,
            model=settings.vlm_model,
            first_token_timeout=settings.vlm_first_token_timeout,
            idle_timeout=settings.vlm_idle_timeout,
            max_concurrency=settings.vlm_max_concurrency,
            metrics=self.metrics,
        )
        metrics = self.metrics
        return_large_frees_to_the_os()  # so the decode budget bounds the process, not only the work
        self.images = ImageWorker(  # decoded bytes in flight bounded; animations as contact sheets
            memory=MemoryGate(settings.image_memory_mb * 2**20),
            animation_frames=settings.animation_frames,
            on_wait=metrics.waited("image_worker"),
        )
        # bytes of attachments between download and preparation
        self.downloads = DownloadGate(on_wait=metrics.waited("download"))
        # one download and decode per image, shared by moderation, describe and chat
        self.shared_images = SharedImages(self.images, self.downloads)
        # The images in a message (attachments, previews, stickers, forwards), the same for every feature.
        self.media = MessageMedia(
            self, MediaFetcher(settings.discord_media_hosts), embed_wait=settings.embed_wait_seconds
        )
        self.pacer = ChannelPacer(busy_since=self.started_at)  # the loop's clock is time.monotonic()
        # replies on screen, so that deleting one stops it at once
        self.live = LiveRegistry(on_finished=metrics.reply_requests.observe)
        self.store = await open_store(settings.store_url.reveal(), StoreOptions.from_settings(settings))
        # each message and interaction handled once, in any process
        self.claims = Claims(self.store, on_refused=lambda work: metrics.claims_refused.labels(work).inc())
        self._claim_interactions_first()
        self.server_settings = GuildSettingsService(
            self.store, Defaults(describe_channel_ids=settings.describe_channel_ids, allow_dms=settings.allow_dms)
        )
        shared_settings = SharedSettings(self.server_settings, self.store)  # changes seen by every process at once
        self._background.append(asyncio.create_task(shared_settings.follow(), name="glimpse-settings-changes"))
        self.chat = ChatService(self.store, MemoryLimits.from_settings(settings))
        # Budgets and rate limits; every model request is admitted and metered through it.
        self.guard = Guard(
            self.store,
            Limits.from_settings(settings),
            max_tokens=feature_max_tokens(settings),
            server_limits=self.server_settings.limits,  # a server's own numbers, from /settings limits
            lease=settings.reservation_lease_seconds,  # a crashed process's reservations lapse after it
        )
        self.gate = Gate(
            self.guard,
            on_refused=lambda purpose, scope: metrics.budget_refusals.labels(purpose.value, scope.value).inc(),
        )
        self.steering = Steering(
            chat=self.chat,
            pacer=lambda: self.pacer,
            live=self.live,
            minutes=settings.regenerate_minutes,
            channel=self.get_partial_messageable,
            gate=self.gate,
            vision=lambda: self.vision,
            max_messages=settings.answer_max_messages,
        )
        # deleting a message deletes the bot's replies about it and its exchange in memory
        self.withdrawal = Withdrawal(
            store=self.store,
            live=self.live,
            pacer=lambda: self.pacer,
            delete=message_deleter(self.get_partial_messageable),
        )
        self.moderation = ModerationService(
            store=self.store, vision=self.vision, guard=self.guard, images=self.images, shared=self.shared_images
        )
        self._background.append(asyncio.create_task(self._purge_forever(), name="glimpse-retention"))
        if settings.metrics_port is not None:
            self._background.append(asyncio.create_task(metrics.watch_loop_lag(), name="glimpse-loop-lag"))
            self.health_server = status_server(self, settings.metrics_port)
            await self.health_server.start()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if not self.intents.message_content:
            log.warning(WITHOUT_MESSAGE_CONTENT)
        log.info("Services ready; connecting %s", self.shard_names)
        if self.sync_commands:
            synced = await self.tree.sync()
            log.info("Synced %d application commands globally", len(synced))

    def _claim_interactions_first(self) -> None:
        """Claim every interaction in the store before discord.py hands it to a command, a button or
        a form, so a redelivery or a second process on the same shard does nothing with it.

        discord.py has no hook before it dispatches an interaction; its gateway parser for
        INTERACTION_CREATE (an entry of the connection state's ``parsers``) is wrapped instead.
        """
        parsers = self._connection.parsers
        parse = parsers["INTERACTION_CREATE"]
        claiming: set[asyncio.Task[None]] = set()

        async def parse_if_claimed(data: Any) -> None:
            if await self.claims.claim(Work.INTERACTION, data["id"], wait=INTERACTION_CLAIM_WAIT_SECONDS):
                with self.work.handing_over("interaction"):  # the command, button or form it starts
                    parse(data)

        def claim_first(data: Any) -> None:
            task = asyncio.create_task(parse_if_claimed(data), name=f"glimpse-claim-interaction-{data['id']}")
            claiming.add(task)  # a strong reference until it is done
            self.work.add(task, "interaction")
            task.add_done_callback(claiming.discard)

        parsers["INTERACTION_CREATE"] = claim_first

    def reply_sink(self, interaction: discord.Interaction) -> InteractionSink:
        """Where the reply to a deferred command goes: its response and followups, then, as the
        interaction's token nears its end, the channel (``INTERACTION_MARGIN_SECONDS``)."""
        return InteractionSink(interaction, margin=self.settings.interaction_margin_seconds)

    @property
    def shard_names(self) -> str:
        """This process's shards, for logs and /healthz: "shards 0, 1 of 2"."""
        if self.shard_count is None:
            return "shards: Discord's recommended count"
        ids = sorted(self.shard_ids if self.shard_ids is not None else range(self.shard_count))
        return f"shard{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))} of {self.shard_count}"

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info(
            "Logged in as %s (id %s) in %d servers, %s", self.user, self.user.id, len(self.guilds), self.shard_names
        )

    async def on_shard_ready(self, shard_id: int) -> None:
        log.info("Shard %d of %s ready", shard_id, self.shard_count)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        log.warning("Shard %d of %s disconnected; discord.py reconnects it", shard_id, self.shard_count)

    async def on_shard_resumed(self, shard_id: int) -> None:
        log.info("Shard %d of %s resumed", shard_id, self.shard_count)

    async def _purge_forever(self) -> None:
        """Retention: drop turns, images and audit records older than the configured limit, hourly."""
        keep = self.settings.memory_retention_days * 86400
        while True:
            try:
                removed = await self.store.purge(time.time() - keep)
                if removed:
                    log.info("Retention purge removed %d records", removed)
            except Exception:
                log.exception("Retention purge failed; will try again")
            await asyncio.sleep(PURGE_EVERY_SECONDS)

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        """discord.py's event dispatch; the handler tasks it starts are the bot's tracked work."""
        with self.work.handing_over(f"on_{event_name}"):
            super().dispatch(event_name, *args, **kwargs)

    async def close(self) -> None:
        await self._let_handlers_finish()
        await super().close()
        if hasattr(self, "steering"):
            self.steering.close()
        if self.health_server is not None:
            await self.health_server.close()
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if hasattr(self, "vision"):
            await self.vision.aclose()
        if hasattr(self, "images"):
            self.images.close()
        if hasattr(self, "media"):
            await self.media.close()
        if hasattr(self, "store"):
            await self.store.close()

    async def _let_handlers_finish(self) -> None:
        """On shutdown, give the bot's own work in progress (answers, clicks, forms, moderation) a
        moment to finish and be stored, then cancel the rest.

        Without this, closing the store under a running answer loses that exchange from memory.
        """
        if hasattr(self, "work"):
            late = await self.work.drain(SHUTDOWN_GRACE_SECONDS)
            if late:
                log.warning("Stopped before finishing: %s", ", ".join(late))

    async def on_command_error(self, context: commands.Context[Glimpse], error: commands.CommandError) -> None:
        # Every mention starts like a text command; questions for the chat cog are not errors.
        if isinstance(error, commands.CommandNotFound):
            return
        await super().on_command_error(context, error)

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Last resort for slash commands: a short plain reason instead of a silent failure."""
        if isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You don't have permission to use this command here."
        else:
            log.error("Command %r failed", interaction.command and interaction.command.name, exc_info=error)
            text = "Something went wrong on my side. Please try again in a moment."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("Could not report a command error to the user", exc_info=True)
