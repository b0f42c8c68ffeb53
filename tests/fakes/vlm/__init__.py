"""An OpenAI-compatible VLM server for tests: scripted streams, faults, strict validation, records."""

from .payloads import data_url, image_bytes, image_part, user_message
from .script import Script
from .server import DEFAULT_MODEL, RecordedRequest, VLMServer
from .sse import Usage
from .tokens import image_tokens, smart_resize, text_tokens
from .validation import ReceivedImage

__all__ = [
    "DEFAULT_MODEL",
    "ReceivedImage",
    "RecordedRequest",
    "Script",
    "Usage",
    "VLMServer",
    "data_url",
    "image_bytes",
    "image_part",
    "image_tokens",
    "smart_resize",
    "text_tokens",
    "user_message",
]
