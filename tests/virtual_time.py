"""Simulated time for asyncio: an event loop whose clock jumps to the next timer when idle.

Used by the pacing and live-reply tests and by `bench/pacing.py`, so their figures do not depend on
the machine.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector:
    """Wraps the loop's selector: instead of blocking for ``timeout`` it moves the clock forward."""

    def __init__(self, loop: VirtualTimeLoop, inner: selectors.BaseSelector) -> None:
        self._loop = loop
        self._inner = inner

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._inner.select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is scheduled")
        self._loop.advance(timeout)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time: deterministic, and a 60 s scenario runs in milliseconds.

    Only for code that waits on timers and futures (no real sockets or threads).
    """

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        self._selector = _JumpingSelector(self, self._selector)  # type: ignore[has-type]

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        # Time must move even when ``seconds`` is too small to change a float of this size.
        self._now = max(self._now + seconds, math.nextafter(self._now, math.inf))


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())


def max_in_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` inside any half-open window of length ``window``."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        best = max(best, sum(1 for t in ordered[i:] if t < start + window))
    return best


