"""The guard's spending side: admit a request, reserve its estimated cost, settle what it really cost.

Every model request goes through one :class:`Guard` in three steps:

1. :meth:`Guard.admit` when the request arrives (before a placeholder or a defer): refuses at once
   when a budget it counts against is used up, else takes a slot of the member's per-minute rate.
2. :meth:`Admission.reserve` just before the request is sent: its estimate (prompt + ``max_tokens``)
   is reserved on every meter in one atomic store step, or the request is refused and sends nothing.
3. :meth:`Reservation.settle` when the stream ends: the provider's ``usage`` becomes spent (and a
   usage row); a request that failed before any text is released instead. A reservation is a lease
   (:attr:`Guard.lease` seconds): one its process never settles (it crashed) is released by the store,
   and a request still streaming extends it every half lease (:meth:`Reservation.extend`).

:class:`~bot.guard.metered.MeteredVision` does steps 2 and 3 around each stream, so a feature only
admits and then talks to the model it is given. The clock is injectable (``Guard.clock``), so the
day boundary can be tested. While the store cannot be reached, the counters are kept in this process
(:mod:`bot.guard.fallback`): the bot keeps answering, within its limits, and what it spent meanwhile is
carried into the store when the store answers again (:meth:`Guard.carry_over`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bot.guard.fallback import MemorySpending
from bot.guard.limits import Actor, Charges, Limits, Purpose, Scope, ServerLimits, charges, next_midnight
from bot.guard.limits import utc_day as day_of
from bot.store import Lease, MeterLimit, NotAdmitted, RateLimit, Store, UsageRow

log = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60.0
ADMIT_WAIT_SECONDS = 0.75
"""The longest an admission waits for the store before it counts in this process instead: a command
admits before its first response, which Discord wants within 3 s, even while the store is slow."""
ONCE_A_DAY = 86400.0
RESERVATION_LEASE_SECONDS = 600.0
"""How long a reservation holds its tokens unsettled (``RESERVATION_LEASE_SECONDS``): then the store
releases it, so a process that died mid-request does not hold a budget until midnight. A request
still streaming extends it to a whole lease from then once half of it has passed."""
EXTEND_RETRY_LEASES = 0.25
"""An extension the store failed is tried again this many leases later (still before the lease lapses)."""
EXTEND_WAIT_SECONDS = ADMIT_WAIT_SECONDS
"""The longest a stream's next text waits for its lease's extension: a slow store's goes on meanwhile."""

ServerLimitsSource = Callable[[int], Awaitable[ServerLimits | None]]
T = TypeVar("T")


class Spending(Protocol):
    """The store's spending counters (and claims), as the guard uses them; :class:`MemorySpending` fits."""

    async def admit(
        self, day: str, meters: Sequence[MeterLimit], rate: RateLimit | None, *, now: float
    ) -> NotAdmitted | None: ...
    async def meter_levels(self, day: str, keys: Iterable[str], *, now: float | None = None) -> dict[str, int]: ...
    async def reserve(
        self, day: str, meters: Sequence[MeterLimit], tokens: int, lease: Lease, *, now: float
    ) -> str | None: ...
    async def settle(self, day: str, keys: Sequence[str], lease: Lease | None, usage: UsageRow | None) -> bool: ...
    async def extend_lease(self, day: str, lease: Lease, expires_at: float) -> bool: ...
    async def claim(self, kind: str, key: str, ttl: float) -> bool: ...


async def _no_server_limits(guild_id: int) -> ServerLimits | None:
    return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request may not go ahead: which limit (``scope``, its number ``limit``), when it resets,
    and for a request that did not fit, how many tokens were left."""

    scope: Scope
    limit: int
    resets_at: float
    left: int | None = None

    def line(self) -> str:
        """One short line for the member (Discord renders ``<t:…:R>`` as "in 3 hours")."""
        when = f"<t:{math.ceil(self.resets_at)}:R>"
        if self.scope is Scope.RATE:
            return f"Slow down a little: at most {self.limit} requests a minute. Try again {when}."
        whose, used = _BUDGET_WORDS[self.scope]
        reset = f"It resets at midnight UTC ({when})."
        if self.left is not None and self.left > 0:
            return f"This request needs more than the {self.left:,} tokens left of {whose} ({self.limit:,}). {reset}"
        return f"{used} ({self.limit:,} tokens). {reset}"


_BUDGET_WORDS = {
    Scope.MEMBER: ("your daily token budget in this server", "You have used your daily token budget in this server"),
    Scope.SERVER: ("this server's daily token budget", "This server has used its daily token budget"),
    Scope.DM: (
        "your daily token budget in direct messages",
        "You have used your daily token budget in direct messages",
    ),
    Scope.MODERATION: ("this server's daily moderation budget", "This server has used its daily moderation budget"),
}


@dataclass(frozen=True, slots=True)
class Spent:
    """What a finished request cost (the provider's ``usage``, or our estimate when it sent none)."""

    prompt_tokens: int
    completion_tokens: int


class Guard:
    """Budgets and rate limits over the store. ``server_limits`` reads a server's own numbers."""

    def __init__(
        self,
        store: Store,
        limits: Limits,
        *,
        max_tokens: Mapping[Purpose, int],
        server_limits: ServerLimitsSource = _no_server_limits,
        clock: Callable[[], float] = time.time,
        lease: float = RESERVATION_LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.limits = limits
        self.max_tokens = dict(max_tokens)
        self.server_limits = server_limits
        self.clock = clock
        self.lease = lease
        self.fallback = MemorySpending()  # counts while the store cannot be reached
        self.carrying: asyncio.Task[None] | None = None  # the fallback's usage on its way to the store

    async def spending(
        self, step: Callable[[Spending], Awaitable[T]], *, wait: float | None = None
    ) -> tuple[T, Spending]:
        """``step`` on the store, or on the in-process counters while the store fails (or takes longer
        than ``wait`` seconds); and which. The first step the store answers again starts carrying
        what was counted here meanwhile into it (:meth:`carry_over`, in the background)."""
        try:
            async with asyncio.timeout(wait):
                result = await step(self.store)
        except Exception as error:
            log.warning("Store unavailable for the spending counters (%r); counting in this process", error)
            return await step(self.fallback), self.fallback
        if self.fallback.unsaved and self.carrying is None:
            self.carrying = asyncio.create_task(self.carry_over(), name="guard-carry-over")
        return result, self.store

    async def carry_over(self) -> None:
        """Settle into the store what this process spent while the store could not be reached (its
        usage rows and the tokens on its meters), so ``/usage`` shows it; what the store refuses
        again stays for the next time it answers."""
        try:
            unsaved = self.fallback.take_unsaved()
            for done, (day, keys, row) in enumerate(unsaved):
                try:
                    await self.store.settle(day, keys, None, row)
                except Exception as error:
                    self.fallback.put_back(unsaved[done:])
                    log.warning("Could not yet carry usage counted during a store outage (%r)", error)
                    return
            log.info("Carried %d usage rows counted during a store outage into the store", len(unsaved))
        finally:
            self.carrying = None

    async def charges(self, actor: Actor) -> Charges:
        server = None
        if actor.guild_id is not None:
            try:
                async with asyncio.timeout(ADMIT_WAIT_SECONDS):
                    server = await self.server_limits(actor.guild_id)
            except Exception as error:
                log.warning("Could not read server %s's limits (%r); the deployment's apply", actor.guild_id, error)
        return charges(actor, self.limits, server)

    async def admit(self, actor: Actor) -> Admission | Refusal:
        """Whether ``actor`` may start a request now (step 1 of the module docstring): one store step,
        bounded in time (:data:`ADMIT_WAIT_SECONDS`), so a command may admit before it answers."""
        plan = await self.charges(actor)
        now = self.clock()
        rate = None if plan.rate_key is None else RateLimit(plan.rate_key, plan.rate_limit, RATE_WINDOW_SECONDS)
        meters = [(meter.key, meter.limit) for meter in plan.meters]
        held, _ = await self.spending(
            lambda counters: counters.admit(day_of(now), meters, rate, now=now), wait=ADMIT_WAIT_SECONDS
        )
        if held is None:
            return Admission(self, actor, plan)
        if held.meter is not None:
            full = plan.meter(held.meter)
            return Refusal(full.scope, full.limit, next_midnight(now))
        return Refusal(Scope.RATE, plan.rate_limit, held.slot_frees_at)

    async def once_a_day(self, key: str) -> bool:
        """True for the first caller of the UTC day for ``key`` (a claim in the store: across
        processes), False after."""
        claim = f"{key}:{day_of(self.clock())}"
        taken, _ = await self.spending(lambda counters: counters.claim("daily-notice", claim, ONCE_A_DAY))
        return taken


@dataclass(frozen=True, slots=True)
class Admission:
    """A request that may go ahead; :meth:`reserve` before each model call it makes."""

    guard: Guard
    actor: Actor
    plan: Charges

    @property
    def max_tokens(self) -> int:
        return self.guard.max_tokens[self.actor.feature]

    async def reserve(self, tokens: int) -> Reservation | Refusal:
        """Reserve ``tokens`` on every meter, atomically (step 2 of the module docstring)."""
        guard = self.guard
        now = guard.clock()
        day = day_of(now)
        meters = [(m.key, m.limit) for m in self.plan.meters]
        lease = Lease(uuid.uuid4().hex, now + guard.lease)
        full_key, counters = await guard.spending(
            lambda counters: counters.reserve(day, meters, tokens, lease, now=now)
        )
        if full_key is not None:
            meter = self.plan.meter(full_key)
            level = (await counters.meter_levels(day, [full_key])).get(full_key, 0)
            return Refusal(meter.scope, meter.limit, next_midnight(now), left=max(meter.limit - level, 0))
        return Reservation(self, day, tokens, counters, lease)


class Reservation:
    """Tokens held on the meters until :meth:`settle` (idempotent: only the first call counts)."""

    def __init__(self, admission: Admission, day: str, tokens: int, counters: Spending, lease: Lease) -> None:
        self.admission = admission
        self.day = day
        self.tokens = tokens
        self.lease = lease  # its name and expiry in the store
        self._counters = counters  # where it was reserved: the store, or this process's stand-in
        self._ending: asyncio.Task[None] | None = None
        self._extending: asyncio.Task[None] | None = None
        self._extend_at = lease.expires_at - admission.guard.lease / 2  # half a lease after it was granted
        self._lapsed = False  # found lapsed by an extension (and warned about)

    def extension_due(self) -> bool:
        """Whether half a lease has passed since it was granted or last extended: one clock read."""
        return not self._lapsed and self.admission.guard.clock() >= self._extend_at

    async def extend(self) -> None:
        """Hold the tokens a whole lease (:attr:`Guard.lease`) from now, so a request that streams for
        long keeps them. Never raises: a store that fails is logged and asked again
        :data:`EXTEND_RETRY_LEASES` later; a lease that already lapsed is warned about once (the
        settlement then counts the spend alone). Waits at most :data:`EXTEND_WAIT_SECONDS`, and
        cancelling it stops only the wait: the extension goes on in a task of its own (one at a
        time), which the settlement waits for (it settles the lease as extended)."""
        if self._extending is not None and not self._extending.done():
            return
        self._extending = _keep(asyncio.create_task(self._extend(), name="guard-extend"))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXTEND_WAIT_SECONDS):
                await asyncio.shield(self._extending)

    async def _extend(self) -> None:
        guard = self.admission.guard
        now = guard.clock()
        lease = Lease(self.lease.id, now + guard.lease)
        try:
            held = await self._counters.extend_lease(self.day, self.lease, lease.expires_at)
        except Exception as error:
            self._extend_at = now + guard.lease * EXTEND_RETRY_LEASES
            log.warning("Could not extend a reservation's lease (%r); the answer goes on, and it is tried again", error)
            return
        if held:
            self.lease, self._extend_at = lease, now + guard.lease / 2
            return
        self._lapsed = True
        log.warning(
            "A request outlived its reservation's lease (%.0f s) before extending it: its tokens were released"
            " early (RESERVATION_LEASE_SECONDS is shorter than twice the longest wait for the model's text)",
            guard.lease,
        )

    async def settle(self, spent: Spent | None) -> None:
        """Count ``spent`` (None: release the reservation) and wait until it is counted. Shielded: a
        cancelled caller still ends it."""
        await asyncio.shield(self.end(spent))

    def end(self, spent: Spent | None) -> asyncio.Task[None]:
        """Start counting ``spent`` (None: releasing) in a task of its own, without waiting for it
        (await the task, shielded, to wait); every later call returns the first call's task."""
        if self._ending is None:
            self._ending = _keep(asyncio.create_task(self._count(spent), name="guard-settle"))
        return self._ending

    async def _count(self, spent: Spent | None) -> None:
        actor = self.admission.actor
        usage = None
        if spent is not None:
            usage = UsageRow(
                day=self.day,
                guild_id=actor.guild_id or 0,
                user_id=0 if actor.feature.automatic else actor.user_id or 0,
                feature=actor.feature.value,
                prompt_tokens=spent.prompt_tokens,
                completion_tokens=spent.completion_tokens,
                requests=1,
            )
        if self._extending is not None:
            await asyncio.wait([self._extending])  # the lease to settle is the one it leaves
        try:
            held = await self._counters.settle(self.day, self.admission.plan.keys, self.lease, usage)
        except Exception:
            # The answer is already on screen; a lost settlement only leaves the meters high until
            # the reservation's lease lapses.
            log.exception("Could not settle a reservation of %d tokens", self.tokens)
            return
        if not held and not self._lapsed:  # its tokens were already released: the request outlived the lease
            log.warning(
                "A request settled after its reservation's lease lapsed (%.0f s): RESERVATION_LEASE_SECONDS"
                " is shorter than twice the wait for the model's first word",
                self.admission.guard.lease,
            )


_RUNNING: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> asyncio.Task[None]:
    """``task``, held until it is done (the event loop holds tasks only weakly)."""
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return task
