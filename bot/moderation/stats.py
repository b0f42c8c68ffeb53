"""``/moderation stats``: counts per category and per action over a window of the audit trail."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.moderation.categories import Category
from bot.store import AuditRecord

WINDOWS_DAYS = (7, 30)
_ACTION_NAMES = {"delete": "Deleted", "timeout": "Timed out", "dismiss": "Dismissed"}


@dataclass
class AuditSummary:
    checked: int = 0
    from_cache: int = 0
    flagged: int = 0
    needs_review: int = 0
    manual_checks: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    by_bot: Counter[str] = field(default_factory=Counter)
    by_moderators: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


def summarize(records: Iterable[AuditRecord], since: float) -> AuditSummary:
    """Count the records created at or after ``since``. A verdict counts once per category it names."""
    summary = AuditSummary()
    for record in records:
        if record.created_at < since:
            continue
        if record.kind == "check":
            summary.manual_checks += 1
        elif record.kind == "verdict":
            summary.checked += 1
            summary.from_cache += bool(record.detail.get("cached"))
            if record.category == "needs_review":
                summary.needs_review += 1
            elif record.category != "none":
                summary.flagged += 1
                for name in record.detail.get("categories") or [record.category]:
                    summary.categories[name] += 1
        elif record.kind == "action":
            (summary.by_bot if record.actor_id is None else summary.by_moderators)[record.action] += 1
        elif record.kind == "error":
            summary.failures[record.action] += 1
    return summary


def format_summary(days: int, summary: AuditSummary) -> str:
    """A few lines for one window (fits an embed field: well under 1024 characters)."""
    lines = [
        f"Images checked: **{summary.checked}** ({summary.from_cache} answered from the cache)",
        f"Flagged: **{summary.flagged}** · needs review: **{summary.needs_review}**",
    ]
    if summary.categories:
        labels = {c.value: c.label for c in Category}
        lines.append(
            "By category: "
            + ", ".join(
                f"{labels.get(name, name)} {count}"
                for name, count in sorted(summary.categories.items(), key=lambda item: (-item[1], item[0]))
            )
        )
    for who, counts in (("by the bot", summary.by_bot), ("by moderators", summary.by_moderators)):
        if counts:
            lines.append(
                f"Actions {who}: "
                + ", ".join(f"{_ACTION_NAMES.get(action, action)} {count}" for action, count in sorted(counts.items()))
            )
    if summary.failures:
        lines.append(
            "Failed or blocked actions: "
            + ", ".join(f"{action.replace('_', ' ')} {count}" for action, count in sorted(summary.failures.items()))
        )
    if summary.manual_checks:
        lines.append(f"Manual checks (Check image): {summary.manual_checks}")
    return "\n".join(lines)
