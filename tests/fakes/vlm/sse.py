"""Payload builders: SSE frames and JSON bodies shaped exactly as OpenAI sends them."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

DONE_FRAME = b"data: [DONE]\n\n"
MALFORMED_FRAME = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "\n\n'


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True)
class Completion:
    """Identity shared by every frame of one completion."""

    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + secrets.token_hex(12))
    created: int = field(default_factory=lambda: int(time.time()))

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None, with_usage: bool) -> bytes:
        payload: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if with_usage:
            payload["usage"] = usage
        return frame(payload)

    def delta_frame(
        self, delta: dict[str, str], finish_reason: str | None = None, *, with_usage: bool = False
    ) -> bytes:
        """One ``chat.completion.chunk``; ``with_usage`` adds ``"usage": null`` as OpenAI does."""
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._chunk([choice], None, with_usage)

    def usage_frame(self, usage: Usage) -> bytes:
        """The final chunk sent when ``stream_options.include_usage`` is true: no choices, only usage."""
        return self._chunk([], usage.as_dict(), True)

    def body(self, text: str, finish_reason: str, usage: Usage) -> dict[str, Any]:
        """A non-streaming ``chat.completion`` object."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage.as_dict(),
        }


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def error_body(
    message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def models_body(models: list[str], created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": "glimpse-fake"} for m in models],
    }
