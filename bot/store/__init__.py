"""Persistent storage for Glimpse, chosen by ``STORE_URL``.

``sqlite:///data/glimpse.db`` (a path relative to the project directory, wherever the bot is started
from), ``sqlite:////abs/path.db``,
``sqlite:///:memory:``, or ``redis://host:6379/0`` / ``rediss://...`` for several processes.
"""

from __future__ import annotations

from pathlib import Path

from bot.conversation import ExchangeForgotten
from bot.store.base import Store
from bot.store.records import (
    AuditGroup,
    AuditRecord,
    DuplicateAnswerError,
    ImageBlob,
    JSONDict,
    Lease,
    MeterLimit,
    NotAdmitted,
    RateLimit,
    Replies,
    SettingsChange,
    SettingsConflictError,
    StoreOptions,
    StoreStats,
    UsageRow,
    VersionedSettings,
)

__all__ = [
    "PROJECT_DIR",
    "AuditGroup",
    "AuditRecord",
    "DuplicateAnswerError",
    "ExchangeForgotten",
    "ImageBlob",
    "JSONDict",
    "Lease",
    "MeterLimit",
    "NotAdmitted",
    "RateLimit",
    "Replies",
    "SettingsChange",
    "SettingsConflictError",
    "Store",
    "StoreOptions",
    "StoreStats",
    "UsageRow",
    "VersionedSettings",
    "open_store",
    "sqlite_path",
]

PROJECT_DIR = Path(__file__).resolve().parents[2]
"""Where relative SQLite paths point: the checkout holding ``bot/`` (not the working directory)."""


def sqlite_path(url: str) -> str:
    """The file path in a ``sqlite:///...`` URL: four slashes are absolute, three are relative to
    :data:`PROJECT_DIR` (so ``make run`` from any directory finds the same memory)."""
    scheme, sep, rest = url.partition("://")
    if scheme != "sqlite" or not sep or not rest.startswith("/") or rest == "/":
        raise ValueError(f"not a sqlite:/// URL: {url!r}")
    path = rest[1:]
    return path if path == ":memory:" else str(PROJECT_DIR / path)


async def open_store(url: str, options: StoreOptions | None = None) -> Store:
    """Open (and for SQLite, create and migrate) the store at ``url``; close it with ``await close()``."""
    scheme = url.partition("://")[0]
    if scheme == "sqlite":
        from bot.store.sqlite import SQLiteStore

        return await SQLiteStore.open(sqlite_path(url), options)
    if scheme in ("redis", "rediss"):
        from bot.store.redis import RedisStore

        return await RedisStore.open(url, options)
    raise ValueError(f"unsupported store URL scheme {scheme!r}: use sqlite:/// or redis://")
