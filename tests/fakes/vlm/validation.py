"""Strict request validation, as a careful OpenAI-compatible provider does it.

Every problem raises :class:`RequestRejected` carrying the HTTP status and the OpenAI-style error
fields; a valid request becomes a :class:`ParsedRequest` with its images decoded (by Pillow) and
its texts collected, ready to be recorded and billed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .tokens import ImageShapeError, image_tokens, text_tokens

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
DETAILS = frozenset({"auto", "low", "high"})
KNOWN_PARAMS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "response_format", "n", "stop", "presence_penalty", "frequency_penalty",
        "seed", "user", "logprobs", "top_logprobs", "logit_bias", "tools", "tool_choice",
        "parallel_tool_calls", "metadata", "store", "service_tier",
    }
)  # fmt: skip
DATA_URL = re.compile(r"data:(image/[a-z0-9.+-]+);base64,(.*)", re.DOTALL)


class RequestRejected(Exception):
    """The request is refused; ``status`` and the fields make the OpenAI error body."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type


@dataclass(frozen=True)
class ReceivedImage:
    """One image as the server decoded it."""

    width: int
    height: int
    format: str  # Pillow's format name: "JPEG", "PNG", ...
    mime: str  # the MIME type the data URL declared
    base64_length: int
    detail: str | None
    tokens: int
    sha256: str = ""
    """Hex digest of the decoded image bytes: whether two requests carried the very same image."""


@dataclass(frozen=True)
class ParsedRequest:
    model: str
    stream: bool
    include_usage: bool
    images: tuple[ReceivedImage, ...]
    texts: tuple[str, ...]

    @property
    def prompt_tokens(self) -> int:
        return sum(text_tokens(t) for t in self.texts) + sum(i.tokens for i in self.images)


@dataclass(frozen=True)
class Limits:
    models: frozenset[str]
    max_images: int = 4
    max_image_base64: int = 1_000_000


def validate(body: Any, limits: Limits) -> ParsedRequest:
    """Check a ``/chat/completions`` body; raise :class:`RequestRejected` on the first problem."""
    if not isinstance(body, dict):
        raise RequestRejected("The request body must be a JSON object.")
    unknown = sorted(set(body) - KNOWN_PARAMS)
    if unknown:
        raise RequestRejected(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestRejected("you must provide a model parameter", param="model")
    stream, include_usage = _check_stream(body)
    _check_sampling(body)
    _check_response_format(body.get("response_format"))
    texts: list[str] = []
    images: list[ReceivedImage] = []
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestRejected("'messages' must be a non-empty array.", param="messages")
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]", limits, texts, images)
    if len(images) > limits.max_images:
        raise RequestRejected(
            f"At most {limits.max_images} images are allowed per request, got {len(images)}.",
            param="messages",
            code="too_many_images",
        )
    if model not in limits.models:
        raise RequestRejected(
            f"The model `{model}` does not exist or you do not have access to it.",
            status=404,
            param="model",
            code="model_not_found",
        )
    return ParsedRequest(model, stream, include_usage, tuple(images), tuple(texts))


def _check_stream(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise RequestRejected("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is None:
        return bool(stream), False
    if not stream:
        raise RequestRejected(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise RequestRejected("'stream_options' only accepts 'include_usage'.", param="stream_options")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise RequestRejected("'include_usage' must be a boolean.", param="stream_options.include_usage")
    return True, include_usage


def _number_in(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise RequestRejected(f"'{name}' must be a number between {low} and {high}.", param=name)


def _check_sampling(body: dict[str, Any]) -> None:
    _number_in(body, "temperature", 0, 2)
    _number_in(body, "top_p", 0, 1)
    _number_in(body, "presence_penalty", -2, 2)
    _number_in(body, "frequency_penalty", -2, 2)
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise RequestRejected(f"'{name}' must be a positive integer.", param=name)
    if body.get("n", 1) not in (1, None):
        raise RequestRejected("Only n=1 is supported.", param="n")


def _check_response_format(value: Any) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object") and set(value) == {"type"}:
        return
    if kind == "json_schema":
        schema = value.get("json_schema")
        if (
            isinstance(schema, dict)
            and isinstance(schema.get("name"), str)
            and isinstance(schema.get("schema", {}), dict)
        ):
            return
        raise RequestRejected(
            "'response_format.json_schema' needs a 'name' and an object 'schema'.", param="response_format"
        )
    raise RequestRejected(
        "'response_format.type' must be one of 'text', 'json_object', 'json_schema'.", param="response_format"
    )


def _check_message(message: Any, where: str, limits: Limits, texts: list[str], images: list[ReceivedImage]) -> None:
    if not isinstance(message, dict):
        raise RequestRejected(f"'{where}' must be an object.", param=where)
    role = message.get("role")
    if role not in ROLES:
        raise RequestRejected(
            f"Invalid value for '{where}.role': expected one of {', '.join(sorted(ROLES))}.",
            param=f"{where}.role",
        )
    content = message.get("content")
    if content is None and role == "assistant":
        return
    if isinstance(content, str):
        texts.append(content)
        return
    if not isinstance(content, list) or not content:
        raise RequestRejected(
            f"'{where}.content' must be a string or a non-empty array of parts.", param=f"{where}.content"
        )
    for index, part in enumerate(content):
        _check_part(part, f"{where}.content[{index}]", role, limits, texts, images)


def _check_part(
    part: Any, where: str, role: str, limits: Limits, texts: list[str], images: list[ReceivedImage]
) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        if set(part) != {"type", "text"} or not isinstance(part["text"], str):
            raise RequestRejected(f"'{where}' must be {{'type': 'text', 'text': string}}.", param=where)
        texts.append(part["text"])
        return
    if kind != "image_url":
        raise RequestRejected(f"Invalid value for '{where}.type': expected 'text' or 'image_url'.", param=where)
    if role != "user":
        raise RequestRejected(f"Image URLs are only allowed for messages with role 'user', not '{role}'.", param=where)
    spec = part.get("image_url")
    if set(part) != {"type", "image_url"} or not isinstance(spec, dict) or set(spec) - {"url", "detail"}:
        raise RequestRejected(
            f"'{where}' must be {{'type': 'image_url', 'image_url': {{'url', 'detail'?}}}}.", param=where
        )
    detail = spec.get("detail")
    if detail is not None and detail not in DETAILS:
        raise RequestRejected(
            f"Invalid value for '{where}.image_url.detail': expected 'auto', 'low' or 'high'.",
            param=f"{where}.image_url.detail",
        )
    images.append(decode_image(spec.get("url"), detail, f"{where}.image_url.url", limits.max_image_base64))


def decode_image(url: Any, detail: str | None, where: str, max_base64: int) -> ReceivedImage:
    """Decode a ``data:image/...;base64,`` URL with Pillow, or refuse it."""
    match = DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise RequestRejected(
            "Invalid image URL: expected a base64 'data:image/...' URL.",
            param=where,
            code="invalid_image_url",
        )
    mime, payload = match.groups()
    if len(payload) > max_base64:
        raise RequestRejected(
            f"Image too large: {len(payload)} bytes of base64, the limit is {max_base64}.",
            param=where,
            code="image_too_large",
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestRejected("Invalid base64 image data.", param=where, code="invalid_image") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                width, height, fmt = image.width, image.height, image.format or "unknown"
        tokens = image_tokens(width, height)
    except ImageShapeError as exc:
        raise RequestRejected(f"Invalid image: {exc}.", param=where, code="invalid_image") from None
    except Exception:
        raise RequestRejected(
            "The image data could not be decoded as an image.", param=where, code="invalid_image"
        ) from None
    return ReceivedImage(width, height, fmt, mime, len(payload), detail, tokens, hashlib.sha256(data).hexdigest())
