"""The guard: whether a piece of work may go ahead (claimed once, and, as they land, within access,
budget and rate). Pure: no Discord."""

from bot.guard.claims import CLAIM_TTL_SECONDS, Claims, ClaimStore, Work

__all__ = ["CLAIM_TTL_SECONDS", "ClaimStore", "Claims", "Work"]
