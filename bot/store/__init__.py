"""Persistent storage for Glimpse, chosen by ``STORE_URL``.

``sqlite:///data/glimpse.db`` (a path relative to the working directory), ``sqlite:////abs/path.db``,
``sqlite:///:memory:``, or ``redis://host:6379/0`` / ``rediss://...`` for several processes.
"""

from __future__ import annotations

from bot.store.base import (
    AuditRecord,
    DuplicateAnswerError,
    ImageBlob,
    JSONDict,
    SettingsChange,
    SettingsConflictError,
    Store,
    StoreOptions,
    StoreStats,
    VersionedSettings,
)

__all__ = [
    "AuditRecord",
    "DuplicateAnswerError",
    "ImageBlob",
    "JSONDict",
    "SettingsChange",
    "SettingsConflictError",
    "Store",
    "StoreOptions",
    "StoreStats",
    "VersionedSettings",
    "open_store",
    "sqlite_path",
]


def sqlite_path(url: str) -> str:
    """The file path in a ``sqlite:///...`` URL (three slashes: relative, four: absolute)."""
    scheme, sep, rest = url.partition("://")
    if scheme != "sqlite" or not sep or not rest.startswith("/") or rest == "/":
        raise ValueError(f"not a sqlite:/// URL: {url!r}")
    return rest[1:]


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
