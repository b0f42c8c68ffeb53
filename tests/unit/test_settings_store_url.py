"""STORE_URL is a secret (it can hold a Redis password); relative SQLite paths belong to the project;
the audit trail has its own retention setting."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from bot.logs import RedactSecrets
from bot.settings import Settings
from bot.store import PROJECT_DIR, StoreOptions, open_store, sqlite_path

BASE = {"DISCORD_TOKEN": "discord-token-0123456789", "VLM_API_KEY": "vlm-key-0123456789"}
PASSWORD = "correct-horse-battery"


def test_store_url_with_a_password_never_shows() -> None:
    url = f"redis://glimpse:{PASSWORD}@cache.internal:6379/0"
    settings = Settings.from_env({**BASE, "STORE_URL": url})
    assert settings.store_url.reveal() == url
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.store_url)

    record = logging.LogRecord("redis", logging.ERROR, __file__, 1, "cannot reach %s (auth %s)", (url, PASSWORD), None)
    RedactSecrets(settings.secrets).filter(record)
    assert PASSWORD not in record.getMessage() and "cache.internal" not in record.getMessage()


def test_a_url_without_a_password_adds_no_secret() -> None:
    settings = Settings.from_env({**BASE, "STORE_URL": "redis://localhost:6379/0"})
    assert len(settings.secrets) == 2


def test_relative_sqlite_paths_are_the_projects_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///data/glimpse.db") == str(PROJECT_DIR / "data" / "glimpse.db")
    assert sqlite_path(f"sqlite:///{tmp_path}/x.db") == f"{tmp_path}/x.db"  # four slashes: absolute
    assert sqlite_path("sqlite:///:memory:") == ":memory:"
    assert (PROJECT_DIR / "bot" / "app.py").is_file()


async def test_the_log_names_the_sqlite_file_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    name = f"data/test-{uuid.uuid4().hex}.db"
    target = PROJECT_DIR / name
    try:
        with caplog.at_level(logging.INFO, logger="bot.store.sqlite"):
            store = await open_store(f"sqlite:///{name}")
            await store.close()
        assert target.is_file() and not (tmp_path / name).exists()
        assert any(str(target) in r.getMessage() for r in caplog.records)
    finally:
        for leftover in target.parent.glob(target.name + "*"):
            leftover.unlink()


def test_audit_retention_has_its_own_setting() -> None:
    settings = Settings.from_env({**BASE, "AUDIT_RETENTION_DAYS": "14", "MEMORY_RETENTION_DAYS": "3"})
    options = StoreOptions.from_settings(settings)
    assert options.audit_retention_seconds == 14 * 86400 and options.retention_seconds == 3 * 86400
    assert StoreOptions.from_settings(Settings.from_env(BASE)).audit_retention_seconds == 90 * 86400
    with pytest.raises(Exception, match="AUDIT_RETENTION_DAYS"):
        Settings.from_env({**BASE, "AUDIT_RETENTION_DAYS": "0"})
