"""``GET /healthz`` and ``GET /metrics`` over HTTP on ``METRICS_HOST:METRICS_PORT`` (aiohttp, which
discord.py already brings). Pure: the bot hands it a health check and its metrics.

``/healthz`` answers 200 when the check finds nothing wrong, 503 with the reasons otherwise, as JSON
(``{"status": "ok", "shards": "shards 0, 1 of 2", "problems": []}``), so a load balancer or an
orchestrator can route around a process whose shards are down or whose store does not answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bot.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    shards: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class StatusServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: Callable[[], Awaitable[Health]],
        metrics: Metrics,
        before_scrape: Callable[[], None] = lambda: None,
    ) -> None:
        self.host = host
        self.port = port
        self._health = health
        self._metrics = metrics
        self._before_scrape = before_scrape
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._scrape)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("Health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        health = await self._health()
        status = "ok" if health.ok else "unavailable"
        body = {"status": status, "shards": health.shards, "problems": list(health.problems)}
        return web.json_response(body, status=200 if health.ok else 503)

    async def _scrape(self, request: web.Request) -> web.Response:
        self._before_scrape()
        text, content_type = self._metrics.render()
        return web.Response(body=text, headers={"Content-Type": content_type})
