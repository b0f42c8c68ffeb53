"""The guard: whether a piece of work may go ahead (claimed once, in any process; within budget and
rate) and what it cost. Pure: no Discord. Every feature follows one pattern (``bot/gate.py`` is the
Discord side)::

    admission = await guard.admit(Actor(Purpose.CHAT, user_id=..., guild_id=..., role_ids=...))
    if isinstance(admission, Refusal): ...say admission.line() and stop...
    model = MeteredVision(admission, bot.vision)   # reserves before each request, settles after
"""

from bot.guard.budget import Admission, Guard, Refusal, Reservation, Spent
from bot.guard.claims import CLAIM_TTL_SECONDS, INTERACTION_CLAIM_WAIT_SECONDS, Claims, ClaimStore, Work
from bot.guard.limits import Actor, Limits, Purpose, Scope, ServerLimits, charges, feature_max_tokens, narrowed
from bot.guard.metered import LimitReached, MeteredStream, MeteredVision, estimate_prompt
from bot.guard.usage import Prices, usage_report

__all__ = [
    "CLAIM_TTL_SECONDS",
    "INTERACTION_CLAIM_WAIT_SECONDS",
    "Actor",
    "Admission",
    "ClaimStore",
    "Claims",
    "Guard",
    "LimitReached",
    "Limits",
    "MeteredStream",
    "MeteredVision",
    "Prices",
    "Purpose",
    "Refusal",
    "Reservation",
    "Scope",
    "ServerLimits",
    "Spent",
    "Work",
    "charges",
    "estimate_prompt",
    "feature_max_tokens",
    "narrowed",
    "usage_report",
]
