"""What the bot tells an operator about itself: Discord requests for the metrics (through discord.py's
``http_trace``), each shard's gateway latency, and the health check behind ``GET /healthz``."""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace
from typing import TYPE_CHECKING

import aiohttp
import discord

from bot.metrics import Metrics
from bot.status_server import Health, StatusServer

if TYPE_CHECKING:
    from bot.app import Glimpse

STORE_CHECK_TIMEOUT = 2.0


def discord_trace(metrics: Metrics) -> aiohttp.TraceConfig:
    """Counts the REST requests discord.py makes (attachment downloads from the CDN are not counted),
    by method and status, and the 429s by their scope."""
    trace = aiohttp.TraceConfig()

    async def on_request_end(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if not str(params.url).startswith(discord.http.Route.BASE):
            return
        status = params.response.status
        metrics.discord_requests.labels(params.method, str(status)).inc()
        if status == 429:
            metrics.discord_rate_limited.labels(params.response.headers.get("X-RateLimit-Scope", "unknown")).inc()

    trace.on_request_end.append(on_request_end)
    return trace


def record_latencies(bot: Glimpse) -> None:
    """Each shard's heartbeat latency into the metrics (before each scrape)."""
    for shard_id, latency in bot.latencies:
        bot.metrics.gateway_latency.labels(str(shard_id)).set(latency if math.isfinite(latency) else float("nan"))


async def check_health(bot: Glimpse) -> Health:
    """Healthy when every shard of this process is connected and the store answers."""
    problems = []
    expected = bot.shard_ids if bot.shard_ids is not None else range(bot.shard_count or 1)
    shards = bot.shards
    for shard_id in expected:
        info = shards.get(shard_id)
        if info is None or info.is_closed():
            problems.append(f"shard {shard_id} not connected")
    try:
        async with asyncio.timeout(STORE_CHECK_TIMEOUT):
            await bot.store.cache_get("health", "check")
    except Exception as error:
        problems.append(f"store unavailable: {type(error).__name__}")
    return Health(bot.shard_names, tuple(problems))


def status_server(bot: Glimpse, port: int) -> StatusServer:
    return StatusServer(
        bot.settings.metrics_host,
        port,
        health=lambda: check_health(bot),
        metrics=bot.metrics,
        before_scrape=lambda: record_latencies(bot),
    )
