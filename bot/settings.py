"""Configuration from the environment (and `.env`), validated once at start.

Every problem names the variable it concerns, so `make run` can say exactly what to fix.
Secrets are wrapped in :class:`Secret`, whose repr and str never show the value.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from bot.images.media import DEFAULT_MEDIA_HOSTS, parse_media_host

DEFAULT_VLM_BASE_URL = "https://api.novita.ai/openai"
DEFAULT_VLM_MODEL = "qwen/qwen2.5-vl-72b-instruct"
DEFAULT_STORE_URL = "sqlite:///data/glimpse.db"
DEFAULT_METRICS_HOST = "127.0.0.1"
MAX_SHARDS = 4096

T = TypeVar("T", int, float)


class Secret:
    """A string that does not leak through repr(), str(), f-strings or logging."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


DEFAULT_STORE_SECRET = Secret(DEFAULT_STORE_URL)


class SettingsError(Exception):
    """Configuration is missing or invalid; ``problems`` lists one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    discord_token: Secret
    vlm_api_key: Secret
    vlm_base_url: str = DEFAULT_VLM_BASE_URL
    vlm_model: str = DEFAULT_VLM_MODEL
    describe_channel_ids: frozenset[int] = frozenset()
    max_images_per_request: int = 2
    vlm_first_token_timeout: float = 60.0
    vlm_idle_timeout: float = 30.0
    vlm_max_concurrency: int = 8
    log_level: str = "INFO"
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    owner_ids: frozenset[int] = frozenset()
    store_url: Secret = DEFAULT_STORE_SECRET  # may hold a Redis password
    # Conversation memory (see bot/conversation/planner.py for how they are applied).
    memory_max_turns: int = 20
    memory_max_tokens: int = 6000
    memory_idle_minutes: int = 24 * 60
    memory_retention_days: int = 30
    recent_image_minutes: int = 30
    # Several processes: which shards this one runs (None: Discord's recommended count, all of them).
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    # Health and Prometheus metrics over HTTP (None: off).
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    allow_dms: bool = True
    audit_retention_days: int = 90  # the moderation audit trail behind /moderation stats
    # Images beyond attachments, and the memory image work may hold (bot/images/).
    embed_wait_seconds: float = 4.0
    image_memory_mb: int = 256
    animation_frames: int = 4
    discord_media_hosts: frozenset[str] = frozenset(parse_media_host(h) for h in DEFAULT_MEDIA_HOSTS)
    regenerate_minutes: int = 15
    # Seconds before an interaction token's end (15 minutes) at which a command's reply moves to channel messages.
    interaction_margin_seconds: float = 60.0
    # Spending limits (bot/guard): 0 means unlimited. Token budgets are per UTC day.
    answer_max_messages: int = 4
    describe_max_tokens: int = 600
    chat_max_tokens: int = 1500
    ocr_max_tokens: int = 3000
    moderation_max_tokens: int = 400  # enough for a verdict with a 300-character reason and rule
    rate_user_per_minute: int = 6
    budget_user_daily_tokens: int = 50_000
    budget_guild_daily_tokens: int = 1_000_000
    budget_dm_daily_tokens: int = 20_000
    budget_moderation_daily_tokens: int = 200_000
    # How long a reservation holds its tokens unsettled. A stream extends it on its first text after
    # half a lease, so it must exceed twice the wait for the first word (4 attempts of a 60 s
    # first-token wait with their backoff): then only a crashed process's reservations lapse.
    reservation_lease_seconds: float = 600.0
    price_prompt_per_mtok: float | None = None
    price_completion_per_mtok: float | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate settings; raise :class:`SettingsError` naming every bad variable."""
        env = os.environ if env is None else env
        reader = _Reader(env)
        shard_count = reader.optional_integer("SHARD_COUNT", low=1, high=MAX_SHARDS)
        settings = cls(
            discord_token=reader.secret("DISCORD_TOKEN"),
            vlm_api_key=reader.secret("VLM_API_KEY"),
            vlm_base_url=reader.url("VLM_BASE_URL", DEFAULT_VLM_BASE_URL, schemes=("http", "https")),
            vlm_model=reader.text("VLM_MODEL", DEFAULT_VLM_MODEL),
            describe_channel_ids=reader.ids("DESCRIBE_CHANNEL_IDS"),
            max_images_per_request=reader.integer("MAX_IMAGES_PER_REQUEST", 2, low=1, high=10),
            vlm_first_token_timeout=reader.number("VLM_FIRST_TOKEN_TIMEOUT", 60.0, low=0.1, high=600.0),
            vlm_idle_timeout=reader.number("VLM_IDLE_TIMEOUT", 30.0, low=0.1, high=600.0),
            vlm_max_concurrency=reader.integer("VLM_MAX_CONCURRENCY", 8, low=1, high=256),
            log_level=reader.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            discord_api_base=reader.optional_url("DISCORD_API_BASE", schemes=("http", "https")),
            discord_gateway_url=reader.optional_url("DISCORD_GATEWAY_URL", schemes=("ws", "wss")),
            owner_ids=reader.ids("OWNER_IDS"),
            store_url=Secret(reader.url("STORE_URL", DEFAULT_STORE_URL, schemes=("sqlite", "redis", "rediss"))),
            memory_max_turns=reader.integer("MEMORY_MAX_TURNS", 20, low=1, high=500),
            memory_max_tokens=reader.integer("MEMORY_MAX_TOKENS", 6000, low=500, high=200_000),
            memory_idle_minutes=reader.integer("MEMORY_IDLE_MINUTES", 24 * 60, low=1, high=525_600),
            memory_retention_days=reader.integer("MEMORY_RETENTION_DAYS", 30, low=1, high=3650),
            recent_image_minutes=reader.integer("RECENT_IMAGE_MINUTES", 30, low=1, high=10_080),
            shard_count=shard_count,
            shard_ids=reader.shard_ids("SHARD_IDS", shard_count),
            metrics_port=reader.optional_integer("METRICS_PORT", low=1, high=65_535),
            metrics_host=reader.text("METRICS_HOST", DEFAULT_METRICS_HOST),
            allow_dms=reader.boolean("ALLOW_DMS", True),
            audit_retention_days=reader.integer("AUDIT_RETENTION_DAYS", 90, low=1, high=3650),
            embed_wait_seconds=reader.number("EMBED_WAIT_SECONDS", 4.0, low=0.0, high=30.0),
            image_memory_mb=reader.integer("IMAGE_MEMORY_MB", 256, low=32, high=65_536),
            animation_frames=reader.integer("ANIMATION_FRAMES", 4, low=1, high=16),
            discord_media_hosts=reader.origins("DISCORD_MEDIA_HOSTS", DEFAULT_MEDIA_HOSTS),
            regenerate_minutes=reader.integer("REGENERATE_MINUTES", 15, low=1, high=10_080),
            interaction_margin_seconds=reader.number("INTERACTION_MARGIN_SECONDS", 60.0, low=5.0, high=899.0),
            answer_max_messages=reader.integer("ANSWER_MAX_MESSAGES", 4, low=1, high=10),
            describe_max_tokens=reader.integer("DESCRIBE_MAX_TOKENS", 600, low=16, high=32_000),
            chat_max_tokens=reader.integer("CHAT_MAX_TOKENS", 1500, low=16, high=32_000),
            ocr_max_tokens=reader.integer("OCR_MAX_TOKENS", 3000, low=16, high=32_000),
            moderation_max_tokens=reader.integer("MODERATION_MAX_TOKENS", 400, low=64, high=32_000),
            rate_user_per_minute=reader.integer("RATE_USER_PER_MINUTE", 6, low=0, high=10_000),
            budget_user_daily_tokens=reader.integer("BUDGET_USER_DAILY_TOKENS", 50_000, low=0, high=10**12),
            budget_guild_daily_tokens=reader.integer("BUDGET_GUILD_DAILY_TOKENS", 1_000_000, low=0, high=10**12),
            budget_dm_daily_tokens=reader.integer("BUDGET_DM_DAILY_TOKENS", 20_000, low=0, high=10**12),
            budget_moderation_daily_tokens=reader.integer(
                "BUDGET_MODERATION_DAILY_TOKENS", 200_000, low=0, high=10**12
            ),
            reservation_lease_seconds=reader.number("RESERVATION_LEASE_SECONDS", 600.0, low=60.0, high=86_400.0),
            price_prompt_per_mtok=reader.price("PRICE_PROMPT_PER_MTOK"),
            price_completion_per_mtok=reader.price("PRICE_COMPLETION_PER_MTOK"),
        )
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings

    @property
    def secrets(self) -> tuple[Secret, ...]:
        """Every value the logs must never show: the tokens, STORE_URL and the password inside it."""
        found = [self.discord_token, self.vlm_api_key]
        password = urllib.parse.urlsplit(self.store_url.reveal()).password
        if password:  # the whole URL first, then the password wherever else it may show
            found += [self.store_url, Secret(password), Secret(urllib.parse.unquote(password))]
        return tuple(found)


class _Reader:
    """Collects every problem instead of stopping at the first, so one run shows them all."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def secret(self, name: str) -> Secret:
        value = self._raw(name)
        if value is None:
            self.problems.append(f"{name} is not set")
            return Secret("")
        return Secret(value)

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self._raw(name) or default).upper()
        if value not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false")
        return default

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        return self._bounded(name, default, int, "a whole number", low, high)

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        return self._bounded(name, default, float, "a number of seconds", low, high)

    def price(self, name: str) -> float | None:
        """A price per million tokens, or None when unset (costs are then not estimated)."""
        if self._raw(name) is None:
            return None
        return self._bounded(name, 0.0, float, "a price (a number, e.g. 0.8)", 0.0, 1_000_000.0)

    def _bounded(self, name: str, default: T, parse: Callable[[str], T], kind: str, low: T, high: T) -> T:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = parse(value)
        except ValueError:
            self.problems.append(f"{name} must be {kind}")
            return default
        if not low <= number <= high:
            self.problems.append(f"{name} must be between {low:g} and {high:g}")
            return default
        return number

    def optional_integer(self, name: str, *, low: int, high: int) -> int | None:
        if self._raw(name) is None:
            return None
        return self._bounded(name, low, int, "a whole number", low, high)

    def shard_ids(self, name: str, count: int | None) -> tuple[int, ...] | None:
        """``SHARD_IDS`` of ``SHARD_COUNT`` (``count``): each below the count, and only with one."""
        if self._raw(name) is None:
            return None
        known = len(self.problems)
        ids = tuple(sorted(self.ids(name)))
        if len(self.problems) > known:
            return None
        if count is None:
            self.problems.append(f"{name} needs SHARD_COUNT (the total number of shards)")
            return None
        if not ids or ids[-1] >= count:
            self.problems.append(f"{name} must list shard numbers from 0 to {count - 1} (below SHARD_COUNT)")
            return None
        return ids

    def ids(self, name: str) -> frozenset[int]:
        value = self._raw(name)
        if value is None:
            return frozenset()
        parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            self.problems.append(f"{name} must be a comma-separated list of numeric IDs")
            return frozenset()
        return frozenset(int(part) for part in parts)

    def origins(self, name: str, default: tuple[str, ...]) -> frozenset[str]:
        """Comma-separated hosts (https on 443) or whole origins (``http://127.0.0.1:8080``)."""
        value = self._raw(name)
        entries = [e for e in value.split(",") if e.strip()] if value is not None else list(default)
        try:
            origins = frozenset(parse_media_host(entry) for entry in entries)
        except ValueError as error:
            self.problems.append(f"{name}: {error}")
            return frozenset(parse_media_host(entry) for entry in default)
        if not origins:
            self.problems.append(f"{name} must name at least one host")
        return origins

    def optional_url(self, name: str, *, schemes: tuple[str, ...]) -> str | None:
        value = self._raw(name)
        if value is None:
            return None
        return self._check_url(name, value, schemes)

    def url(self, name: str, default: str, *, schemes: tuple[str, ...]) -> str:
        return self._check_url(name, self._raw(name) or default, schemes)

    def _check_url(self, name: str, value: str, schemes: tuple[str, ...]) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in schemes or not rest:
            self.problems.append(f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return value.rstrip("/")
