"""Request-side helpers for tests: images as data URLs and user messages that carry them."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def image_bytes(width: int = 64, height: int = 48, fmt: str = "PNG", color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, fmt)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_part(url: str, detail: str | None = "auto") -> dict[str, Any]:
    spec: dict[str, Any] = {"url": url}
    if detail is not None:
        spec["detail"] = detail
    return {"type": "image_url", "image_url": spec}


def user_message(text: str, *urls: str, detail: str | None = "auto") -> dict[str, Any]:
    """``{"role": "user", "content": [text part, image parts...]}`` as the bot sends it."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts.extend(image_part(url, detail) for url in urls)
    return {"role": "user", "content": parts}
