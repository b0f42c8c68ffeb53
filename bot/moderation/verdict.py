"""The model's moderation verdict: strict parsing, and its text for a mod-log embed.

The model reads untrusted images (which may carry text such as "ignore your instructions"), so
its output is untrusted too. Anything that is not exactly the agreed JSON object becomes a
"needs human review" verdict, which is logged for moderators and never acted on automatically.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from bot.moderation.categories import Category

MAX_OUTPUT_CHARS = 4000
MAX_REASON_CHARS = 300
MAX_RULE_CHARS = 300
VERDICT_KEYS = frozenset({"flagged", "categories", "severity", "reason", "rule"})
SEVERITY_NAMES = {0: "none", 1: "low", 2: "medium", 3: "high"}

# One ```json ... ``` (or bare ```) fence around the whole answer, nothing before or after it.
_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*)\n[ \t]*```\Z", re.DOTALL | re.IGNORECASE)
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


class VerdictError(ValueError):
    """Why a model answer (or a stored verdict) is not a usable verdict."""


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    categories: tuple[Category, ...]
    severity: int
    reason: str
    rule: str | None
    review_reason: str | None = None

    @classmethod
    def needs_review(cls, why: str) -> Verdict:
        """A verdict that only ever produces a log entry for humans, never an action."""
        return cls(flagged=False, categories=(), severity=0, reason="", rule=None, review_reason=why)

    @property
    def requires_review(self) -> bool:
        return self.review_reason is not None

    @property
    def should_log(self) -> bool:
        """Whether moderators get a mod-log entry for it."""
        return self.flagged or self.requires_review

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible record (cache, audit trail); read back with :meth:`from_dict`."""
        return {
            "flagged": self.flagged,
            "categories": [c.value for c in self.categories],
            "severity": self.severity,
            "reason": self.reason,
            "rule": self.rule,
            "needs_review": self.review_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, allowed_categories: Collection[Category]) -> Verdict:
        """Strict inverse of :meth:`to_dict`; raises :class:`VerdictError` on anything else."""
        if not isinstance(data, Mapping) or "needs_review" not in data:
            raise VerdictError("not a stored verdict")
        why = data["needs_review"]
        if why is not None:
            if not isinstance(why, str):
                raise VerdictError("needs_review must be text or null")
            return cls.needs_review(why)
        return _validate({k: v for k, v in data.items() if k != "needs_review"}, allowed_categories)


def parse_verdict(text: str, *, allowed_categories: Collection[Category]) -> Verdict:
    """The model's answer as a :class:`Verdict`, or ``Verdict.needs_review(why)`` if it is not
    exactly one JSON object with the agreed keys and types (a ```json fence around it is fine)."""
    try:
        return _validate(_load_single_object(text), allowed_categories)
    except VerdictError as error:
        return Verdict.needs_review(str(error))


def _load_single_object(text: str) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        raise VerdictError("the model gave no answer")
    if len(text) > MAX_OUTPUT_CHARS:
        raise VerdictError("the answer is too long to be a verdict")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group("body")
    try:
        value = json.loads(body, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise VerdictError(f"the answer is not a single JSON object ({error.msg})") from None
    if not isinstance(value, dict):
        raise VerdictError("the answer is not a JSON object")
    return value


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise VerdictError("the answer repeats a key")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise VerdictError(f"the answer contains {name}")


def _validate(value: Mapping[str, Any], allowed: Collection[Category]) -> Verdict:
    keys = set(value)
    if keys != VERDICT_KEYS:
        problems = []
        if keys - VERDICT_KEYS:
            problems.append("unexpected keys: " + ", ".join(sorted(_short(k) for k in keys - VERDICT_KEYS)))
        if VERDICT_KEYS - keys:
            problems.append("missing keys: " + ", ".join(sorted(VERDICT_KEYS - keys)))
        raise VerdictError("; ".join(problems))
    flagged, severity = value["flagged"], value["severity"]
    if not isinstance(flagged, bool):
        raise VerdictError("flagged must be true or false")
    if not isinstance(severity, int) or isinstance(severity, bool) or not 0 <= severity <= 3:
        raise VerdictError("severity must be a whole number from 0 to 3")
    categories = _categories(value["categories"], allowed)
    reason = _line(value["reason"], "reason", MAX_REASON_CHARS)
    rule = None if value["rule"] is None else _line(value["rule"], "rule", MAX_RULE_CHARS)
    if not flagged == (severity > 0) == bool(categories):
        raise VerdictError("flagged, severity and categories contradict each other")
    if not flagged and rule is not None:
        raise VerdictError("a rule is named but nothing is flagged")
    return Verdict(flagged=flagged, categories=categories, severity=severity, reason=reason, rule=rule)


def _categories(value: Any, allowed: Collection[Category]) -> tuple[Category, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise VerdictError("categories must be a list of category names")
    if len(set(value)) != len(value):
        raise VerdictError("categories repeat")
    result = []
    for item in value:
        if item not in Category._value2member_map_:
            raise VerdictError(f"unknown category {_short(item)!r}")
        category = Category(item)
        if category not in allowed:
            raise VerdictError(f"category {item!r} is not watched on this server")
        result.append(category)
    return tuple(result)


def _line(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise VerdictError(f"{name} must be text")
    text = value.strip()
    if not text:
        raise VerdictError(f"{name} is empty")
    if len(text) > limit:
        raise VerdictError(f"{name} is longer than {limit} characters")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS for ch in text):
        raise VerdictError(f"{name} must be a single line of plain text")
    return text


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- text for the mod-log --------------------------------------------------------------------------

_MARKDOWN = re.compile(r"([\\*_~`|\[\]()<>#])")


def escape_untrusted(text: str) -> str:
    """Model text made inert for Discord: markdown shown literally, no mention can ping (a zero-width
    space after every ``@`` breaks ``@everyone``, ``@here``, ``<@id>`` and ``<@&id>``), and links are
    defanged so a phishing URL read out of an image is not one click away in the mod-log."""
    text = _MARKDOWN.sub(r"\\\1", text)
    return text.replace("@", "@\u200b").replace("://", ":\u200b//")


def format_verdict(verdict: Verdict) -> str:
    """A few short lines for an embed, always under Discord's 1024-character field limit."""
    if verdict.requires_review:
        why = _escaped(verdict.review_reason or "", 300)
        return f"**Needs human review:** the model's answer could not be used ({why})."
    if not verdict.flagged:
        return f"**No problem found.**\n**Reason:** {_escaped(verdict.reason, 450)}"
    lines = [
        "**Categories:** " + ", ".join(c.label for c in verdict.categories),
        f"**Severity:** {verdict.severity}/3 ({SEVERITY_NAMES[verdict.severity]})",
        f"**Reason:** {_escaped(verdict.reason, 450)}",
    ]
    if verdict.rule:
        lines.append(f"**Rule:** {_escaped(verdict.rule, 300)}")
    return "\n".join(lines)


def _escaped(text: str, limit: int) -> str:
    """Escaped text cut to ``limit`` characters without leaving a dangling backslash."""
    escaped = escape_untrusted(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    return cut[: len(cut) - trailing % 2] + "…"
