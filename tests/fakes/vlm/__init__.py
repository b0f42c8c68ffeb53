"""An OpenAI-compatible VLM server for tests: scripted streams, faults, strict validation, records."""

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
    "image_tokens",
    "smart_resize",
    "text_tokens",
]
