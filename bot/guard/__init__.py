"""The guard: whether a piece of work may go ahead (claimed once, and, as they land, within access,
budget and rate). Pure: no Discord."""

from bot.guard.seen import SeenMessages

__all__ = ["SeenMessages"]
