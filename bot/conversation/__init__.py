"""Conversation: a channel's remembered turns, the request planner that fits them into a budget, and
the chat service that answers a question in their light (plain data in and out). Pure: no Discord."""

from bot.conversation.planner import (
    ContextSummary,
    ImageRef,
    MemoryLimits,
    RequestPlan,
    Turn,
    estimate_text_tokens,
    may_reveal_spoiler,
    plan_request,
    summarize,
    turns_in_reach,
)
from bot.conversation.service import MEMORY_UNAVAILABLE, ChatService, Recall, user_turn

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
