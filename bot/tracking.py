"""The bot's own work in progress (answers, clicks, forms, moderation), so that stopping waits for it.

Tracked where the bot hands an event to its handlers (every task that hand-over creates is the
bot's work), not by the names discord.py happens to give its tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class TrackedWork:
    def __init__(self) -> None:
        self._running: dict[asyncio.Task[Any], str] = {}

    def add(self, task: asyncio.Task[Any], what: str) -> None:
        """Track ``task`` until it is done."""
        self._running[task] = what
        task.add_done_callback(lambda done: self._running.pop(done, None))

    @contextlib.contextmanager
    def handing_over(self, what: str) -> Iterator[None]:
        """Track every task created while the block runs (the handlers an event is dispatched to)."""
        before = asyncio.all_tasks()
        try:
            yield
        finally:
            for task in asyncio.all_tasks() - before:
                self.add(task, what)

    async def drain(self, grace: float) -> list[str]:
        """Wait up to ``grace`` seconds for the tracked work, including work it starts meanwhile (an
        interaction's claim hands over to its command); cancel what is left and return its names."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        current = asyncio.current_task()
        while pending := [t for t in self._running if not t.done() and t is not current]:
            remaining = deadline - loop.time()
            if remaining <= 0:
                late = sorted(self._running.get(t, "?") for t in pending)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=1.0)
                return late
            names = ", ".join(sorted({self._running.get(t, "?") for t in pending}))
            log.info("Waiting up to %.0f s for %d tasks in progress (%s)", remaining, len(pending), names)
            await asyncio.wait(pending, timeout=remaining)
        return []
