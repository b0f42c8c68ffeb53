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
    assert settings.allow_dms is True


def test_allow_dms_reads_true_and_false_and_names_a_bad_value() -> None:
    assert Settings.from_env(BASE | {"ALLOW_DMS": "false"}).allow_dms is False
    assert Settings.from_env(BASE | {"ALLOW_DMS": " Yes "}).allow_dms is True
    with pytest.raises(SettingsError, match="ALLOW_DMS must be true or false"):
        Settings.from_env(BASE | {"ALLOW_DMS": "sometimes"})


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


def test_shards_and_metrics_are_off_or_automatic_by_default() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.shard_count, settings.shard_ids) == (None, None)
    assert (settings.metrics_port, settings.metrics_host) == (None, "127.0.0.1")


def test_shard_ids_of_a_shard_count() -> None:
    settings = Settings.from_env(BASE | {"SHARD_COUNT": "4", "SHARD_IDS": "3, 2"})
    assert (settings.shard_count, settings.shard_ids) == (4, (2, 3))
    assert Settings.from_env(BASE | {"SHARD_COUNT": "2"}).shard_ids is None  # every shard of 2 here


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SHARD_IDS": "0"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "2"}, "SHARD_IDS must list shard numbers from 0 to 1"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "one"}, "SHARD_IDS must be a comma-separated list"),
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT must be between 1 and 4096"),
        ({"METRICS_PORT": "99999"}, "METRICS_PORT must be between 1 and 65535"),
    ],
)
def test_bad_shard_and_metrics_settings_are_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(BASE | env)
    assert any(line.startswith(problem) for line in caught.value.problems), caught.value.problems
