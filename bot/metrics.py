"""The bot's Prometheus metrics, one registry per bot (served on ``GET /metrics`` when ``METRICS_PORT``
is set; ``prometheus-client`` is the optional extra ``metrics``). Pure: no Discord.

Without prometheus-client every instrument is a no-op, so the code that records never checks.
Which feature a model request belongs to comes from :data:`FEATURE`, a context variable each entry
point sets (``with feature("chat"):``): asyncio tasks inherit it, so nothing passes it along.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

try:
    import prometheus_client
except ImportError:  # the optional extra is not installed
    prometheus_client = None  # type: ignore[assignment]

P = ParamSpec("P")
R = TypeVar("R")

FEATURE: ContextVar[str] = ContextVar("glimpse_feature", default="other")
LAG_EVERY_SECONDS = 0.01
LAG_MAX_SLOT_SECONDS, LAG_MAX_SLOTS = 10, 6  # the max gauge covers the last minute
LAG_SECONDS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1)
SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120)
WAIT_SECONDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
EDITS = (1, 2, 3, 5, 8, 13, 21, 34, 55)
WAITS = ("image_worker", "download", "model_slot")


def available() -> bool:
    """Whether prometheus-client is installed (``pip install '.[metrics]'``)."""
    return prometheus_client is not None


@contextlib.contextmanager
def feature(name: str) -> Iterator[None]:
    """Count the model requests made inside the block (and the tasks it starts) under ``name``."""
    token = FEATURE.set(name)
    try:
        yield
    finally:
        FEATURE.reset(token)


def counts_as(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate an async entry point so that the model requests it makes count under ``name``."""

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(function)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            with feature(name):
                return await function(*args, **kwargs)

        return counted

    return decorate


class _Nothing:
    """Stands in for an instrument when prometheus-client is not installed."""

    def labels(self, *args: Any, **kwargs: Any) -> _Nothing:
        return self

    def inc(self, amount: float = 1) -> None: ...
    def observe(self, amount: float) -> None: ...
    def set(self, value: float) -> None: ...
    def set_function(self, function: Callable[[], float]) -> None: ...


class Metrics:
    """The instruments, named ``glimpse_*``; :meth:`render` is the Prometheus text for ``/metrics``."""

    def __init__(self) -> None:
        client = prometheus_client
        self.registry = client.CollectorRegistry() if client is not None else None

        def make(kind: str, name: str, doc: str, labels: tuple[str, ...], **options: Any) -> Any:
            if client is None:
                return _Nothing()
            return getattr(client, kind)(name, doc, labels, registry=self.registry, **options)

        self.model_requests = make(
            "Counter", "glimpse_model_requests", "Model requests by feature and outcome", ("feature", "outcome")
        )
        self.model_tokens = make(
            "Counter", "glimpse_model_tokens", "Tokens the model billed, by feature", ("feature", "kind")
        )
        self.first_token = make(
            "Histogram", "glimpse_model_first_token_seconds", "Time to the model's first words",
            ("feature",), buckets=SECONDS,
        )
        self.full_answer = make(
            "Histogram", "glimpse_model_answer_seconds", "Time to the model's whole answer",
            ("feature",), buckets=SECONDS,
        )
        self.discord_requests = make(
            "Counter", "glimpse_discord_requests", "Discord REST requests by method and status", ("method", "status")
        )
        self.discord_rate_limited = make(
            "Counter", "glimpse_discord_rate_limited", "Discord REST requests answered 429, by scope", ("scope",)
        )
        self.reply_requests = make(
            "Histogram", "glimpse_reply_messages_sent_and_edits", "Sends and edits per live reply",
            (), buckets=EDITS,
        )
        self.gateway_latency = make(
            "Gauge", "glimpse_gateway_latency_seconds", "Heartbeat latency per shard", ("shard",)
        )
        self.waits = make(
            "Histogram", "glimpse_wait_seconds", "Waits for image workers, downloads and model slots",
            ("resource",), buckets=WAIT_SECONDS,
        )
        self.loop_lag = make(
            "Histogram", "glimpse_event_loop_lag_seconds", "How late the event loop woke a 10 ms timer, in seconds",
            (), buckets=LAG_SECONDS,
        )
        self.loop_lag_max = make(
            "Gauge", "glimpse_event_loop_lag_max_seconds", "The worst loop lag in the last minute", ()
        )
        self._worst_lags: deque[tuple[int, float]] = deque()  # (10 s slot, worst lag in it)
        self.budget_refusals = make(
            "Counter", "glimpse_budget_refusals", "Requests refused by a spending limit, by feature and limit",
            ("feature", "limit"),
        )
        self.claims_refused = make(
            "Counter", "glimpse_claims_refused", "Events not handled here: claimed by an earlier delivery "
            "or another process", ("work",)
        )

    def waited(self, resource: str) -> Callable[[float], None]:
        """A callback recording waits for ``resource`` (one of :data:`WAITS`)."""
        histogram = self.waits.labels(resource)
        return histogram.observe

    def model_request(
        self,
        outcome: str,
        *,
        first_token: float | None,
        total: float,
        prompt_tokens: int | None,
        completion_tokens: int | None,
    ) -> None:
        """One model request ended (for the feature in :data:`FEATURE`)."""
        name = FEATURE.get()
        self.model_requests.labels(name, outcome).inc()
        if prompt_tokens:
            self.model_tokens.labels(name, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.model_tokens.labels(name, "completion").inc(completion_tokens)
        if first_token is not None:
            self.first_token.labels(name).observe(first_token)
        if outcome == "ok":
            self.full_answer.labels(name).observe(total)

    async def watch_loop_lag(self, every: float = LAG_EVERY_SECONDS) -> None:
        """Forever: sleep ``every`` seconds and record how much later than asked the loop woke up."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + every
            await asyncio.sleep(every)
            now = loop.time()
            lag = max(0.0, now - asked)
            self.loop_lag.observe(lag)
            self._note_worst(int(now // LAG_MAX_SLOT_SECONDS), lag)

    def _note_worst(self, slot: int, lag: float) -> None:
        """Keep the worst lag per slot for the last :data:`LAG_MAX_SLOTS` slots; the gauge is their max."""
        worst = self._worst_lags
        if worst and worst[-1][0] == slot:
            if lag <= worst[-1][1]:
                return
            worst[-1] = (slot, lag)
        else:
            worst.append((slot, lag))
            while worst[0][0] <= slot - LAG_MAX_SLOTS:
                worst.popleft()
        self.loop_lag_max.set(max(value for _, value in worst))

    def render(self) -> tuple[bytes, str]:
        """The Prometheus exposition text and its content type."""
        if prometheus_client is None or self.registry is None:
            raise RuntimeError("prometheus-client is not installed: pip install '.[metrics]'")
        return prometheus_client.generate_latest(self.registry), prometheus_client.CONTENT_TYPE_LATEST
