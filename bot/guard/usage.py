"""What ``/usage`` shows: token use today and this month, what is left, per feature, the top members
and an estimated cost, from the store's per-day usage rows, with a chart of the last 30 days.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.guard.budget import Guard
from bot.guard.chart import usage_chart
from bot.guard.limits import Actor, Purpose, Scope, charges, days_back, month_start, next_midnight, utc_day
from bot.store import UsageRow

TOP_MEMBERS = 5
CHART_DAYS = 30


@dataclass(frozen=True, slots=True)
class Prices:
    """Dollars per million prompt and completion tokens (``PRICE_PROMPT_PER_MTOK``, ...)."""

    prompt: float
    completion: float

    def cost(self, rows: Iterable[UsageRow]) -> float:
        rows = list(rows)
        prompt = sum(row.prompt_tokens for row in rows)
        completion = sum(row.completion_tokens for row in rows)
        return (prompt * self.prompt + completion * self.completion) / 1_000_000


@dataclass(frozen=True, slots=True)
class Allowance:
    """One budget as the viewer sees it now: tokens used today of ``limit`` (0: unlimited)."""

    label: str
    used: int
    limit: int

    def line(self) -> str:
        if not self.limit:
            return f"{self.label}: {self.used:,} tokens today (no limit)"
        left = max(self.limit - self.used, 0)
        return f"{self.label}: {self.used:,} of {self.limit:,} tokens used today, {left:,} left"


def tokens(rows: Iterable[UsageRow]) -> int:
    return sum(row.tokens for row in rows)


def _requests(rows: Iterable[UsageRow]) -> int:
    return sum(row.requests for row in rows)


def _use(rows: Sequence[UsageRow]) -> str:
    count = _requests(rows)
    return f"{tokens(rows):,} tokens ({count:,} request{'' if count == 1 else 's'})"


def by_feature(rows: Iterable[UsageRow]) -> dict[str, int]:
    """Tokens per feature, in the order of :class:`Purpose` (features without use left out)."""
    totals: Counter[str] = Counter()
    for row in rows:
        totals[row.feature] += row.tokens
    return {feature.value: totals[feature.value] for feature in Purpose if totals[feature.value]}


def member_report(rows: Sequence[UsageRow], *, today: str, month: str, where: str) -> list[str]:
    """The viewer's own use (``rows`` are theirs) today and this month ``where``."""
    today_rows = [row for row in rows if row.day == today]
    month_rows = [row for row in rows if row.day >= month]
    return [f"**Your use {where}**", f"Today: {_use(today_rows)} · this month: {_use(month_rows)}"]


def server_report(rows: Sequence[UsageRow], *, today: str, month: str, prices: Prices | None) -> list[str]:
    """For Manage Server: the server's totals per feature, the top members and the estimated cost."""
    month_rows = [row for row in rows if row.day >= month]
    lines = [
        "**This server**",
        f"Today: {_use([row for row in rows if row.day == today])} · this month: {_use(month_rows)}",
    ]
    features = by_feature(month_rows)
    if features:
        lines.append("This month by feature: " + " · ".join(
            f"{Purpose(name).label} {count:,}" for name, count in features.items()
        ))
    members: Counter[int] = Counter()
    for row in month_rows:
        if row.user_id:
            members[row.user_id] += row.tokens
    if members:
        top = " · ".join(f"<@{user}> {count:,}" for user, count in members.most_common(TOP_MEMBERS))
        lines.append(f"Top members this month: {top}")
    if prices is not None:
        lines.append(
            f"Estimated cost this month: ${prices.cost(month_rows):,.2f} (at ${prices.prompt:g} prompt / "
            f"${prices.completion:g} completion per million tokens)"
        )
    return lines


_ALLOWANCE_LABELS = {
    Scope.MEMBER: "Your daily budget here",
    Scope.DM: "Your daily budget in direct messages",
    Scope.SERVER: "The server's daily budget",
    Scope.MODERATION: "The server's daily moderation budget",
}


async def usage_report(
    guard: Guard, actor: Actor, *, manager: bool, prices: Prices | None
) -> tuple[str, bytes]:
    """``/usage`` for ``actor`` (in a server, or in DMs): the message text and the chart's PNG.
    ``manager`` (Manage Server) adds the server's totals, top members and cost, and charts the server."""
    now = guard.clock()
    today, month, days = utc_day(now), month_start(now), days_back(now, CHART_DAYS)
    guild = actor.guild_id or 0
    rows = await guard.store.usage(guild, min(month, days[0]), today, user_id=None if manager else actor.user_id)
    mine = [row for row in rows if row.user_id == actor.user_id]
    meters = list((await guard.charges(actor)).meters)
    if manager and actor.guild_id is not None:
        meters += charges(Actor(Purpose.MODERATION, guild_id=actor.guild_id), guard.limits).meters
    levels = await guard.store.meter_levels(today, [meter.key for meter in meters], now=now)  # lapsed: left
    where = "in this server" if actor.guild_id is not None else "in direct messages"
    lines = member_report(mine, today=today, month=month, where=where)
    lines += [Allowance(_ALLOWANCE_LABELS[m.scope], levels[m.key], m.limit).line() for m in meters]
    lines.append(f"Budgets reset at midnight UTC (<t:{math.ceil(next_midnight(now))}:R>).")
    if manager:
        lines += ["", *server_report(rows, today=today, month=month, prices=prices)]
    return "\n".join(lines), usage_chart(rows if manager else mine, days)
