"""Discord-style rate limits: visible per-route buckets, a hidden per-channel send/edit bucket, a global cap.

Fixed windows, like Discord's: a bucket allows ``limit`` requests, then refuses until ``window`` seconds
after its first request. Sends and edits in one channel also share a bucket that the route headers do
not show; hitting it yields a 429 with ``X-RateLimit-Scope: shared`` while the headers still show
requests remaining (this is how Discord behaves and what discord.py cannot foresee).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field


@dataclass
class RateLimitConfig:
    channel_limit: int = 5  # sends + edits per channel, shared (hidden) bucket
    channel_window: float = 5.0
    message_route_limit: int = 5  # visible bucket of POST messages / PATCH message, per channel
    message_route_window: float = 5.0
    webhook_limit: int = 5  # interaction webhook routes (@original, followups): one bucket per token
    webhook_window: float = 2.0
    route_limit: int = 50  # any other route, per route and major parameter
    route_window: float = 1.0
    global_limit: int = 50  # per second, all authenticated routes except interactions/webhooks
    global_window: float = 1.0
    enabled: bool = True


@dataclass
class _Window:
    limit: int
    window: float
    started: float = 0.0
    used: int = 0

    def _roll(self, now: float) -> None:
        if now - self.started >= self.window:
            self.started = now
            self.used = 0

    def peek(self, now: float) -> bool:
        self._roll(now)
        return self.used < self.limit

    def take(self, now: float) -> None:
        self._roll(now)
        self.used += 1

    def reset_after(self, now: float) -> float:
        return max(0.0, self.started + self.window - now) if self.used else self.window


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    scope: str = "user"
    is_global: bool = False
    bucket: str = ""


@dataclass
class RateLimiter:
    config: RateLimitConfig = field(default_factory=RateLimitConfig)
    _windows: dict[str, _Window] = field(default_factory=dict)

    def _window(self, key: str, limit: int, window: float) -> _Window:
        found = self._windows.get(key)
        if found is None or (found.limit, found.window) != (limit, window):
            found = self._windows[key] = _Window(limit, window)
        return found

    def check(
        self, method: str, route: str, major: str, *, channel_shared: bool, counts_global: bool
    ) -> Decision:
        """Decide one request. ``route`` is the template, ``major`` the major parameter value."""
        cfg = self.config
        now = time.monotonic()
        bucket_hash = hashlib.sha1(f"{method} {route}".encode()).hexdigest()[:16]
        if route.startswith("/webhooks/"):
            limit, window = cfg.webhook_limit, cfg.webhook_window
        elif channel_shared:
            limit, window = cfg.message_route_limit, cfg.message_route_window
        else:
            limit, window = cfg.route_limit, cfg.route_window
        if route.startswith("/webhooks/"):  # every route of one webhook token shares its bucket
            bucket_hash = hashlib.sha1(b"webhook").hexdigest()[:16]
        route_window = self._window(f"{bucket_hash}:{major}", limit, window)
        if not cfg.enabled:
            return Decision(True, {})

        if counts_global:
            glob = self._window("global", cfg.global_limit, cfg.global_window)
            if not glob.peek(now):
                retry = glob.reset_after(now)
                return Decision(
                    False,
                    {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
                    retry,
                    "global",
                    True,
                    "global",
                )
        if not route_window.peek(now):
            retry = route_window.reset_after(now)
            headers = self._headers(route_window, bucket_hash, now)
            headers["X-RateLimit-Scope"] = "user"
            return Decision(False, headers, retry, "user", False, bucket_hash)
        shared = (
            self._window(f"channel:{major}", cfg.channel_limit, cfg.channel_window)
            if channel_shared
            else None
        )
        if shared is not None and not shared.peek(now):
            retry = shared.reset_after(now)
            headers = self._headers(route_window, bucket_hash, now)
            headers["X-RateLimit-Scope"] = "shared"
            return Decision(False, headers, retry, "shared", False, f"channel:{major}")

        route_window.take(now)
        if shared is not None:
            shared.take(now)
        if counts_global:
            self._windows["global"].take(now)
        return Decision(True, self._headers(route_window, bucket_hash, now), bucket=bucket_hash)

    @staticmethod
    def _headers(window: _Window, bucket_hash: str, now: float) -> dict[str, str]:
        reset_after = window.reset_after(now)
        return {
            "X-RateLimit-Limit": str(window.limit),
            "X-RateLimit-Remaining": str(max(0, window.limit - window.used)),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash,
        }
