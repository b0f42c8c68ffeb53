"""Live replies: a stream of text into Discord messages edited as it grows, paced per channel.

``pacing`` and ``textsplit`` are pure; ``live`` and ``sinks`` speak to Discord.
"""

from bot.replies.live import EMPTY_ANSWER, WARNING, LiveReply
from bot.replies.pacing import ChannelPacer
from bot.replies.registry import LiveRegistry
from bot.replies.sinks import (
    NO_MENTIONS,
    InteractionSink,
    MessageSink,
    OncePerChannel,
    ReplySink,
    can_post_in,
    missing_reply_permissions,
)
from bot.replies.textsplit import DISCORD_LIMIT, Wrap
from bot.vlm import ReplyDeleted

__all__ = [
    "DISCORD_LIMIT",
    "EMPTY_ANSWER",
    "NO_MENTIONS",
    "WARNING",
    "ChannelPacer",
    "InteractionSink",
    "LiveRegistry",
    "LiveReply",
    "MessageSink",
    "OncePerChannel",
    "ReplyDeleted",
    "ReplySink",
    "Wrap",
    "can_post_in",
    "missing_reply_permissions",
]
