"""An attachment for the code that reads ``bot.images.AttachmentLike`` without Discord around it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.images import DownloadGate


@dataclass
class FakeAttachment:
    """Shaped like ``discord.Attachment``; ``read`` returns ``data`` (or raises ``error``) and notes
    the ``gate``'s bytes in use while it runs. ``id``: as a Discord attachment's, what identifies its
    bytes (``bot.images.SharedImages`` shares one download per id); ``None``: nothing is shared."""

    size: int
    data: bytes = b""
    gate: DownloadGate | None = None
    error: Exception | None = None
    filename: str = "a.png"
    content_type: str | None = "image/png"
    seen_in_use: list[int] = field(default_factory=list)
    reads: int = 0
    id: int | None = None

    @classmethod
    def of(cls, data: bytes, filename: str = "a.png", *, id: int | None = None) -> FakeAttachment:
        """A posted file holding ``data``."""
        return cls(size=len(data), data=data, filename=filename, id=id)

    async def read(self) -> bytes:
        self.reads += 1
        if self.gate is not None:
            self.seen_in_use.append(self.gate.in_use)
        await asyncio.sleep(0)  # a real read yields: let the other downloads interleave
        if self.error is not None:
            raise self.error
        return self.data

    def is_spoiler(self) -> bool:
        return False
