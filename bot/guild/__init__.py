"""Each server's own Glimpse: its settings record (describe and chat channels, access rules, personas,
alt text), the rules that read it, and the cached, compare-and-set service the cogs ask. Pure: no Discord."""

from bot.guild.config import (
    MAX_ACCESS_RULES,
    MAX_CHANNEL_SETTINGS,
    PERSONA_MAX_CHARS,
    SETTINGS_KEY,
    AltLength,
    AltText,
    ChatMode,
    GuildSettings,
    GuildSettingsError,
    RoleRule,
)
from bot.guild.language import AUTO, CHOICES, LOCALES, language_for
from bot.guild.language import label as language_label
from bot.guild.locales import KnownLocales
from bot.guild.policy import (
    ChannelBehaviour,
    Decision,
    Defaults,
    Feature,
    Member,
    Place,
    access,
    behaviour,
    decide,
)
from bot.guild.service import CACHE_SECONDS, GuildSettingsService, StoredSettings
from bot.guild.shared import SETTINGS_TOPIC, SharedSettings
from bot.guild.summary import limits_text, summary_sections

__all__ = [
    "AUTO",
    "CACHE_SECONDS",
    "CHOICES",
    "LOCALES",
    "MAX_ACCESS_RULES",
    "MAX_CHANNEL_SETTINGS",
    "PERSONA_MAX_CHARS",
    "SETTINGS_KEY",
    "SETTINGS_TOPIC",
    "AltLength",
    "AltText",
    "ChannelBehaviour",
    "ChatMode",
    "Decision",
    "Defaults",
    "Feature",
    "GuildSettings",
    "GuildSettingsError",
    "GuildSettingsService",
    "KnownLocales",
    "Member",
    "Place",
    "RoleRule",
    "SharedSettings",
    "StoredSettings",
    "access",
    "behaviour",
    "decide",
    "language_for",
    "language_label",
    "limits_text",
    "summary_sections",
]
