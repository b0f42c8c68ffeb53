"""Per-guild moderation settings: validated on construction, stored as a plain JSON-able dict.

Defaults are deliberately passive: nothing is watched until a moderator picks channels, and every
severity only logs, so enabling the feature never deletes anything by surprise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.images import Detail
from bot.moderation.categories import ALL_CATEGORIES, Category

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
MAX_RULES_CHARS = 4000  # a Discord modal paragraph holds 4000 characters
MAX_WATCHED_CHANNELS = 500
MAX_EXEMPT_ROLES = 50
MIN_TIMEOUT_SECONDS = 60
MAX_TIMEOUT_SECONDS = 28 * 24 * 3600  # Discord's limit for a member timeout
MAX_CACHE_SECONDS = 30 * 24 * 3600
SEVERITIES = (1, 2, 3)

DETAILS: tuple[str, ...] = ("low", "high", "auto")
_MAX_SNOWFLAKE = (1 << 64) - 1


class Action(StrEnum):
    """What happens automatically for a flagged image of a given severity."""

    LOG = "log"
    DELETE = "delete"
    DELETE_TIMEOUT = "delete_timeout"

    @property
    def label(self) -> str:
        return {"log": "Log only", "delete": "Delete", "delete_timeout": "Delete + timeout"}[self.value]


class ModerationSettingsError(ValueError):
    """Invalid settings; ``problems`` has one line per field, fit to show a moderator."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _default_actions() -> dict[int, Action]:
    return {severity: Action.LOG for severity in SEVERITIES}


@dataclass(frozen=True)
class ModerationSettings:
    watch_all_channels: bool = False
    watched_channel_ids: frozenset[int] = frozenset()
    mod_log_channel_id: int | None = None
    rules: str = ""
    categories: frozenset[Category] = ALL_CATEGORIES
    actions: Mapping[int, Action] = field(default_factory=_default_actions)
    timeout_seconds: int = 3600
    detail: Detail = "low"
    cache_seconds: int = 24 * 3600
    exempt_role_ids: frozenset[int] = frozenset()
    """Members with one of these roles are never checked (nor acted on)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        # Normalise collections so equal settings compare equal and nobody mutates them later.
        object.__setattr__(self, "watched_channel_ids", frozenset(self.watched_channel_ids))
        object.__setattr__(self, "exempt_role_ids", frozenset(self.exempt_role_ids))
        if not all(_is_snowflake(rid) for rid in self.exempt_role_ids):
            problems.append("exempt roles must be role IDs")
        if len(self.exempt_role_ids) > MAX_EXEMPT_ROLES:
            problems.append(f"at most {MAX_EXEMPT_ROLES} exempt roles")
        object.__setattr__(self, "categories", frozenset(self.categories))
        object.__setattr__(self, "rules", self.rules.strip() if isinstance(self.rules, str) else self.rules)
        if not all(_is_snowflake(cid) for cid in self.watched_channel_ids):
            problems.append("watched channels must be channel IDs")
        if len(self.watched_channel_ids) > MAX_WATCHED_CHANNELS:
            problems.append(f"at most {MAX_WATCHED_CHANNELS} watched channels")
        if self.mod_log_channel_id is not None and not _is_snowflake(self.mod_log_channel_id):
            problems.append("the mod-log channel must be a channel ID")
        if not isinstance(self.rules, str):
            problems.append("rules must be text")
        elif len(self.rules) > MAX_RULES_CHARS:
            problems.append(f"rules must be at most {MAX_RULES_CHARS} characters (got {len(self.rules)})")
        if not self.categories:
            problems.append("flag at least one category")
        elif not all(isinstance(c, Category) for c in self.categories):
            problems.append("unknown category")
        if set(self.actions) != set(SEVERITIES) or not all(
            isinstance(a, Action) for a in self.actions.values()
        ):
            problems.append("give an action (log, delete, delete_timeout) for each severity 1, 2 and 3")
        else:
            object.__setattr__(self, "actions", _FrozenActions(self.actions))
        if not _is_int(self.timeout_seconds) or not (
            MIN_TIMEOUT_SECONDS <= self.timeout_seconds <= MAX_TIMEOUT_SECONDS
        ):
            problems.append(f"timeout must be between {MIN_TIMEOUT_SECONDS} s and 28 days")
        if self.detail not in DETAILS:
            problems.append("detail must be low, high or auto")
        if not _is_int(self.cache_seconds) or not 0 <= self.cache_seconds <= MAX_CACHE_SECONDS:
            problems.append("cache window must be between 0 s (off) and 30 days")
        if problems:
            raise ModerationSettingsError(problems)

    def watches(self, channel_id: int, parent_id: int | None = None) -> bool:
        """Whether images in this channel are checked; a thread follows its parent channel."""
        if self.watch_all_channels:
            return True
        return channel_id in self.watched_channel_ids or (
            parent_id is not None and parent_id in self.watched_channel_ids
        )

    def exempts(self, role_ids: Iterable[int]) -> bool:
        """Whether a member with these roles is exempt from moderation."""
        return not self.exempt_role_ids.isdisjoint(role_ids)

    def action_for(self, severity: int) -> Action | None:
        """The configured action for a severity; ``None`` for 0 (nothing flagged)."""
        return self.actions.get(severity)

    def replace(self, **changes: Any) -> ModerationSettings:
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    def updated(
        self,
        *,
        mod_log_channel_id: int | None = None,
        watch_all_channels: bool | None = None,
        add_channel_id: int | None = None,
        remove_channel_id: int | None = None,
        flag: Category | None = None,
        ignore: Category | None = None,
        actions: Mapping[int, Action | None] | None = None,
        timeout_seconds: int | None = None,
        detail: Detail | None = None,
        exempt_role_id: int | None = None,
        unexempt_role_id: int | None = None,
    ) -> ModerationSettings:
        """The changes of one `/moderation setup`: ``None`` keeps a setting; validated again."""
        changes: dict[str, Any] = {}
        exempt = set(self.exempt_role_ids)
        if exempt_role_id is not None:
            exempt.add(exempt_role_id)
        if unexempt_role_id is not None:
            exempt.discard(unexempt_role_id)
        changes["exempt_role_ids"] = frozenset(exempt)
        if mod_log_channel_id is not None:
            changes["mod_log_channel_id"] = mod_log_channel_id
        if watch_all_channels is not None:
            changes["watch_all_channels"] = watch_all_channels
        channels = set(self.watched_channel_ids)
        if add_channel_id is not None:
            channels.add(add_channel_id)
        if remove_channel_id is not None:
            channels.discard(remove_channel_id)
        categories = set(self.categories)
        if flag is not None:
            categories.add(flag)
        if ignore is not None:
            categories.discard(ignore)
        merged = dict(self.actions)
        merged.update({severity: a for severity, a in (actions or {}).items() if a is not None})
        if timeout_seconds is not None:
            changes["timeout_seconds"] = timeout_seconds
        if detail is not None:
            changes["detail"] = detail
        return self.replace(
            watched_channel_ids=frozenset(channels), categories=frozenset(categories), actions=merged, **changes
        )

    def policy_fingerprint(self) -> str:
        """Changes whenever a cached verdict would no longer be valid (rules, categories, detail)."""
        material = "\x1f".join([self.rules, ",".join(sorted(self.categories)), self.detail])
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form for the store (IDs as strings, as Discord writes them)."""
        return {
            "version": SETTINGS_VERSION,
            "watch_all_channels": self.watch_all_channels,
            "watched_channel_ids": sorted(str(cid) for cid in self.watched_channel_ids),
            "mod_log_channel_id": None if self.mod_log_channel_id is None else str(self.mod_log_channel_id),
            "rules": self.rules,
            "categories": sorted(c.value for c in self.categories),
            "actions": {str(severity): self.actions[severity].value for severity in SEVERITIES},
            "timeout_seconds": self.timeout_seconds,
            "detail": self.detail,
            "cache_seconds": self.cache_seconds,
            "exempt_role_ids": sorted(str(rid) for rid in self.exempt_role_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModerationSettings:
        """Read what :meth:`to_dict` wrote. Missing fields take their defaults (older records);
        unknown fields are ignored with a warning (a newer bot wrote them); wrong ones raise
        :class:`ModerationSettingsError` listing every problem."""
        if not isinstance(data, Mapping):
            raise ModerationSettingsError(["settings must be a mapping"])
        known = {f.name for f in dataclasses.fields(cls)} | {"version"}
        unknown = sorted(set(data) - known)
        if unknown:
            log.warning("Ignoring unknown moderation settings fields: %s", ", ".join(map(str, unknown)))
        reader = _DictReader(data)
        values: dict[str, Any] = {
            "watch_all_channels": reader.boolean("watch_all_channels"),
            "watched_channel_ids": reader.id_set("watched_channel_ids"),
            "mod_log_channel_id": reader.optional_id("mod_log_channel_id"),
            "rules": reader.text("rules"),
            "categories": reader.categories("categories"),
            "actions": reader.actions("actions"),
            "timeout_seconds": reader.integer("timeout_seconds"),
            "detail": reader.text("detail"),
            "cache_seconds": reader.integer("cache_seconds"),
            "exempt_role_ids": reader.id_set("exempt_role_ids"),
        }
        try:
            settings = cls(**{name: value for name, value in values.items() if value is not _MISSING})
        except ModerationSettingsError as error:
            raise ModerationSettingsError(reader.problems + error.problems) from None
        if reader.problems:
            raise ModerationSettingsError(reader.problems)
        return settings


class _FrozenActions(dict[int, Action]):
    """A read-only severity -> action mapping (settings are frozen; so is this)."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("moderation settings are immutable; use replace()")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


_MISSING: Any = object()


class _DictReader:
    """Type-checks stored values one field at a time, collecting every problem."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: list[str] = []

    def _get(self, name: str) -> Any:
        return self.data.get(name, _MISSING)

    def boolean(self, name: str) -> Any:
        value = self._get(name)
        if value is not _MISSING and not isinstance(value, bool):
            self.problems.append(f"{name} must be true or false")
            return _MISSING
        return value

    def text(self, name: str) -> Any:
        value = self._get(name)
        if value is not _MISSING and not isinstance(value, str):
            self.problems.append(f"{name} must be text")
            return _MISSING
        return value

    def integer(self, name: str) -> Any:
        value = self._get(name)
        if value is not _MISSING and not _is_int(value):
            self.problems.append(f"{name} must be a whole number")
            return _MISSING
        return value

    def _snowflake(self, value: Any) -> int | None:
        if isinstance(value, str) and value.isascii() and value.isdigit() and value == str(int(value)):
            value = int(value)
        return value if _is_snowflake(value) else None

    def optional_id(self, name: str) -> Any:
        value = self._get(name)
        if value is _MISSING or value is None:
            return value
        parsed = self._snowflake(value)
        if parsed is None:
            self.problems.append(f"{name} must be a channel ID")
            return _MISSING
        return parsed

    def id_set(self, name: str) -> Any:
        value = self._get(name)
        if value is _MISSING:
            return value
        parsed = [self._snowflake(item) for item in value] if isinstance(value, list) else [None]
        if any(item is None for item in parsed):
            self.problems.append(f"{name} must be a list of channel IDs")
            return _MISSING
        return frozenset(parsed)

    def categories(self, name: str) -> Any:
        value = self._get(name)
        if value is _MISSING:
            return value
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problems.append(f"{name} must be a list of category names")
            return _MISSING
        unknown = [item for item in value if item not in Category._value2member_map_]
        if unknown:
            self.problems.append(f"unknown categories: {', '.join(unknown)}")
            return _MISSING
        return frozenset(Category(item) for item in value)

    def actions(self, name: str) -> Any:
        value = self._get(name)
        if value is _MISSING:
            return value
        expected = {str(severity) for severity in SEVERITIES}
        if (
            not isinstance(value, Mapping)
            or set(value) != expected
            or not all(item in Action._value2member_map_ for item in value.values())
        ):
            self.problems.append(f"{name} must map each severity 1, 2, 3 to log, delete or delete_timeout")
            return _MISSING
        return {int(severity): Action(item) for severity, item in value.items()}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_snowflake(value: object) -> bool:
    return _is_int(value) and 0 < value <= _MAX_SNOWFLAKE  # type: ignore[operator]
