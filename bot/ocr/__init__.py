"""OCR: the transcription prompt, tiling and joining (``core``), the offline engine (``local``), both
pure; and one transcription streamed into a Discord reply (``transcribe``)."""

from bot.ocr.core import NO_TEXT_MESSAGE, OcrEngine, OcrError, TiledTranscript, build_ocr_messages, join_tiles
from bot.ocr.local import LocalOcrEngine

__all__ = [
    "NO_TEXT_MESSAGE",
    "LocalOcrEngine",
    "OcrEngine",
    "OcrError",
    "TiledTranscript",
    "build_ocr_messages",
    "join_tiles",
]
