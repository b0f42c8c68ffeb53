"""Conversation: a channel's remembered turns (``turns``), the request planner that fits them into a
budget (``planner``), and the chat service that answers a question in their light, plain data in and
out (``service``). Pure: no Discord."""

from bot.conversation.planner import RequestPlan, plan_request
from bot.conversation.service import MEMORY_UNAVAILABLE, ChatService, Recall, user_turn
from bot.conversation.turns import (
    ContextSummary,
    ImageRef,
    MemoryLimits,
    Turn,
    estimate_text_tokens,
    may_reveal_spoiler,
    summarize,
    turns_in_reach,
)

__all__ = [
    "MEMORY_UNAVAILABLE",
    "ChatService",
    "ContextSummary",
    "ImageRef",
    "MemoryLimits",
    "Recall",
    "RequestPlan",
    "Turn",
    "estimate_text_tokens",
    "may_reveal_spoiler",
    "plan_request",
    "summarize",
    "turns_in_reach",
    "user_turn",
]
