import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.logs import REDACTED, RedactSecrets, setup_logging
from bot.settings import DEFAULT_VLM_BASE_URL, DEFAULT_VLM_MODEL, Secret, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
BASE = {"DISCORD_TOKEN": "discord-token-123456", "VLM_API_KEY": "sk-secret-abcdef"}


def test_defaults_apply_when_only_secrets_are_set() -> None:
    settings = Settings.from_env(BASE)
    assert settings.vlm_base_url == DEFAULT_VLM_BASE_URL
    assert settings.vlm_model == DEFAULT_VLM_MODEL
    assert settings.max_images_per_request == 2
    assert settings.describe_channel_ids == frozenset()
    assert settings.discord_api_base is None


def test_every_problem_names_its_variable() -> None:
    env = {"MAX_IMAGES_PER_REQUEST": "lots", "DESCRIBE_CHANNEL_IDS": "12,abc", "DISCORD_GATEWAY_URL": "http://x"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    text = "\n".join(caught.value.problems)
    names = ("DISCORD_TOKEN", "VLM_API_KEY", "MAX_IMAGES_PER_REQUEST", "DESCRIBE_CHANNEL_IDS", "DISCORD_GATEWAY_URL")
    for name in names:
        assert name in text


def test_lists_and_urls_are_parsed() -> None:
    settings = Settings.from_env(
        BASE
        | {
            "DESCRIBE_CHANNEL_IDS": " 111, 222 ;333",
            "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10/",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/gateway",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.describe_channel_ids == {111, 222, 333}
    assert settings.discord_api_base == "http://127.0.0.1:9/api/v10"
    assert settings.log_level == "DEBUG"


def test_secrets_never_show_in_reprs() -> None:
    settings = Settings.from_env(BASE)
    for text in (repr(settings), str(settings), f"{settings.discord_token}", repr(settings.vlm_api_key)):
        assert "discord-token-123456" not in text
        assert "sk-secret-abcdef" not in text
    assert settings.vlm_api_key.reveal() == "sk-secret-abcdef"


def test_log_filter_redacts_secret_values() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "header was Bot %s", ("discord-token-123456",), None)
    RedactSecrets([Secret("discord-token-123456")]).filter(record)
    assert record.getMessage() == f"header was Bot {REDACTED}"


def test_starting_without_configuration_names_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "VLM_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "DISCORD_TOKEN is not set" in done.stderr
    assert "VLM_API_KEY is not set" in done.stderr
    assert ".env.example" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_installed_handler_redacts_messages_and_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    """Through the handler `setup_logging` installs: a secret in the message or in an exception's text
    (a library echoing a header) never reaches the output."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    secret = "sk-secret-abcdef"
    try:
        setup_logging("DEBUG", [Secret(secret)])
        log = logging.getLogger("test.redaction")
        log.info("plain %s", secret)
        try:
            raise RuntimeError(f"401 for Bearer {secret}")
        except RuntimeError:
            log.exception("failed")
        err = capsys.readouterr().err
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert "plain [redacted]" in err and "401 for Bearer [redacted]" in err
    assert secret not in err
