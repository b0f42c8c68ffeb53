"""Moderation core: categories, per-guild settings, prompt, strict verdicts, policy, image hashes,
verdict cache, button IDs and the service. None of these import discord.

The Discord-facing modules live in :mod:`bot.moderation.discord` (never imported from here):
``watch`` (a posted message from check to mod-log), ``enforce`` (the bot's automatic actions),
``entry`` (the mod-log entry), ``buttons`` (the persistent buttons and what a click does) and
``panels`` (command replies), so ``cogs/moderation.py`` is only wiring."""

from bot.moderation.action_ids import (
    ACTION_ID_PATTERN,
    ActionRef,
    ButtonAction,
    decode_action_id,
    encode_action_id,
)
from bot.moderation.cache import CacheHit, CacheStore, VerdictCache
from bot.moderation.categories import ALL_CATEGORIES, Category
from bot.moderation.config import Action, ModerationSettings, ModerationSettingsError
from bot.moderation.phash import ImageFingerprint, dhash, fingerprint, hamming
from bot.moderation.policy import Decision, MissingPermissionNotices, Permission, decide
from bot.moderation.prompt import (
    MODERATION_TEMPERATURE,
    RESPONSE_FORMAT_JSON_OBJECT,
    build_moderation_messages,
)
from bot.moderation.service import CheckResult, ModerationService
from bot.moderation.verdict import Verdict, escape_untrusted, format_verdict, parse_verdict

__all__ = [
    "ACTION_ID_PATTERN",
    "ALL_CATEGORIES",
    "MODERATION_TEMPERATURE",
    "RESPONSE_FORMAT_JSON_OBJECT",
    "Action",
    "ActionRef",
    "ButtonAction",
    "CacheHit",
    "CacheStore",
    "Category",
    "CheckResult",
    "Decision",
    "ImageFingerprint",
    "MissingPermissionNotices",
    "ModerationService",
    "ModerationSettings",
    "ModerationSettingsError",
    "Permission",
    "Verdict",
    "VerdictCache",
    "build_moderation_messages",
    "decide",
    "decode_action_id",
    "dhash",
    "encode_action_id",
    "escape_untrusted",
    "fingerprint",
    "format_verdict",
    "hamming",
    "parse_verdict",
]
