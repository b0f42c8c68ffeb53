"""Moderation in Discord: the mod-log entry and its buttons, enforcement, the panels moderators see,
and the watcher of watched channels. Built on the pure core in :mod:`bot.moderation`."""

from bot.moderation.discord.buttons import ModLogButton
from bot.moderation.discord.panels import check_embeds, settings_embed, stats_embed
from bot.moderation.discord.watch import FLAGGED_IMAGE, flagged_earlier, moderate, withheld

__all__ = [
    "FLAGGED_IMAGE",
    "ModLogButton",
    "check_embeds",
    "flagged_earlier",
    "moderate",
    "settings_embed",
    "stats_embed",
    "withheld",
]
