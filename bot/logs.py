"""Logging set-up with a last line of defence against leaked secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.settings import Secret

REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replaces any secret's value in a record's final message (and traceback text) with a marker.

    The code never logs tokens on purpose; this catches the accidental case, such as a library
    echoing a request header in an exception message.
    """

    def __init__(self, secrets: Iterable[Secret]) -> None:
        super().__init__()
        self._values = [s.reveal() for s in secrets if len(s.reveal()) >= 8]

    def _scrub(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._values:
            return True
        message = record.getMessage()
        scrubbed = self._scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        return True


def setup_logging(level: int | str, secrets: Iterable[Secret] = ()) -> None:
    """Configure the root logger once: one stream handler, discord.py's format, secrets redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # discord.py's HTTP layer is chatty at DEBUG; keep it at INFO unless asked for everything.
    logging.getLogger("discord.http").setLevel(max(logging.INFO, logging.getLogger().level))
