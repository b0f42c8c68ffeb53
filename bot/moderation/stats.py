"""``/moderation stats``: counts per category and per action over a window of the audit trail."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.moderation.categories import Category
from bot.store import AuditGroup

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


def summarize(tally: Mapping[AuditGroup, int]) -> AuditSummary:
    """Sum a window's :meth:`Store.audit_tally`. A verdict counts once per category it names."""
    summary = AuditSummary()
    for group, count in tally.items():
        if group.kind == "check":
            summary.manual_checks += count
        elif group.kind == "verdict":
            summary.checked += count
            summary.from_cache += count if group.cached else 0
            if group.category == "needs_review":
                summary.needs_review += count
            elif group.category != "none":
                summary.flagged += count
                for name in group.categories or (group.category,):
                    summary.categories[name] += count
        elif group.kind == "action":
            (summary.by_moderators if group.by_moderator else summary.by_bot)[group.action] += count
        elif group.kind == "error":
            summary.failures[group.action] += count
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
