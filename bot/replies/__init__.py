"""Live replies: a stream of text into Discord messages edited as it grows, paced per channel.

``pacing``, ``textsplit``, ``controls``, ``registry`` and ``withdrawal`` are pure; ``live``, ``sinks`` and
``steering`` speak to Discord.
"""

from bot.replies.controls import Button, Buttons
from bot.replies.deadline import TOKEN_LIFETIME, TokenDeadline
from bot.replies.layout import THINKING, WARNING
from bot.replies.live import EMPTY_ANSWER, LiveReply
from bot.replies.pacing import ChannelPacer
from bot.replies.registry import LiveRegistry
from bot.replies.sinks import (
    NO_MENTIONS,
    AnswerMessagesSink,
    InteractionSink,
    LastingSink,
    MessageSink,
    OncePerChannel,
    ReplySink,
    button_view,
    can_post_in,
    message_deleter,
    missing_reply_permissions,
    reply_briefly,
)
from bot.replies.steering import Steering, answer_buttons, stop_button
from bot.replies.textsplit import DISCORD_LIMIT, Wrap
from bot.replies.withdrawal import Withdrawal
from bot.vlm import ReplyDeleted, ReplyStopped

__all__ = [
    "DISCORD_LIMIT",
    "EMPTY_ANSWER",
    "NO_MENTIONS",
    "THINKING",
    "TOKEN_LIFETIME",
    "WARNING",
    "AnswerMessagesSink",
    "Button",
    "Buttons",
    "ChannelPacer",
    "InteractionSink",
    "LastingSink",
    "LiveRegistry",
    "LiveReply",
    "MessageSink",
    "OncePerChannel",
    "ReplyDeleted",
    "ReplySink",
    "ReplyStopped",
    "Steering",
    "TokenDeadline",
    "Withdrawal",
    "Wrap",
    "answer_buttons",
    "button_view",
    "can_post_in",
    "message_deleter",
    "missing_reply_permissions",
    "reply_briefly",
    "stop_button",
]
