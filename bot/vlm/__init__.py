"""The model: a streaming OpenAI-compatible client, and one answer's lifecycle from request to reply.

Pure: no Discord. An answer streams into anything that follows :class:`AnswerTarget`.
"""

from bot.vlm.answer import (
    CUT_SHORT,
    INTERNAL_ERROR,
    STOPPED,
    AnswerTarget,
    Model,
    ModelStream,
    ReplyDeleted,
    ReplyStopped,
    note_lines,
    stream_answer,
)
from bot.vlm.client import ClosingStream, Completion, Usage, VisionClient, VisionError, VisionStream

__all__ = [
    "CUT_SHORT",
    "INTERNAL_ERROR",
    "STOPPED",
    "AnswerTarget",
    "ClosingStream",
    "Completion",
    "Model",
    "ModelStream",
    "ReplyDeleted",
    "ReplyStopped",
    "Usage",
    "VisionClient",
    "VisionError",
    "VisionStream",
    "note_lines",
    "stream_answer",
]
