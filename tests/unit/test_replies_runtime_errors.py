"""A RuntimeError is "connection lost" only when it is aiohttp's closed session; any other is a bug,
logged as an error with its traceback, and the reply still ends cleanly."""

from __future__ import annotations

import pytest

from bot.replies import LiveReply
from tests.unit.test_replies import Deltas, RecordingSink, _pacer, _tokens
from tests.virtual_time import run_virtual


@pytest.mark.parametrize(
    ("error", "level", "lost"),
    [(RuntimeError("Session is closed"), "INFO", True), (RuntimeError("dictionary changed size"), "ERROR", False)],
    ids=["closed session", "a bug"],
)
def test_runtime_errors_in_edits_are_told_apart(
    caplog: pytest.LogCaptureFixture, error: RuntimeError, level: str, lost: bool
) -> None:
    async def main() -> RecordingSink:
        sink = RecordingSink(errors={2: error, 3: error, 4: error})
        reply = LiveReply(sink, _pacer())
        await reply.stream(Deltas(_tokens("Words keep coming. " * 10))())
        await reply.finish()
        return sink

    with caplog.at_level("INFO", logger="bot.replies.live"):
        run_virtual(main)
    lines = [r for r in caplog.records if r.name == "bot.replies.live" and r.levelname in ("INFO", "ERROR")]
    connection = [r for r in lines if "no connection to Discord" in r.getMessage()]
    bugs = [r for r in lines if r.levelname == "ERROR"]
    if lost:
        assert [r.levelname for r in connection] == ["INFO", "INFO"] and bugs == []
    else:
        assert connection == []
        assert bugs and all(r.exc_info is not None for r in bugs)
