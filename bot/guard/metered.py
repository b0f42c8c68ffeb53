"""The model as one admitted request sees it: every stream reserves its estimate before it is sent
and settles with the provider's ``usage`` when it ends.

:class:`MeteredVision` has the shape of :class:`~bot.vlm.VisionClient` (``stream``, ``complete``), so
the features' code stays the same; a request that does not fit raises :class:`LimitReached` (a
:class:`~bot.vlm.VisionError`, shown like any other failure) on its first iteration, and nothing is
sent. Every request goes out with the feature's ``max_tokens``. A stream still going after half a
lease extends its reservation (checked on each chunk), so a slow provider does not outlive it.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from PIL import Image

from bot.conversation import MESSAGE_OVERHEAD_TOKENS, estimate_text_tokens
from bot.guard.budget import Admission, Refusal, Reservation, Spent
from bot.images import qwen_image_tokens
from bot.vlm import ClosingStream, Completion, Usage, VisionClient, VisionError, VisionStream

_HEADER_CHARS = 64 * 1024
"""Base64 characters decoded first to read an image's size (its header; the rest only if needed)."""
QWEN_MAX_SIDE = 3584
"""An image whose size cannot be read is estimated at the provider's largest (128x128 blocks)."""


class LimitReached(VisionError):
    """A request refused by the guard; ``reason`` is the refusal's line, ``refusal`` says which limit."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__("limit", detail=refusal.scope.value)
        self.refusal = refusal
        self.reason = refusal.line()


class HasTokens(Protocol):
    @property
    def tokens(self) -> int: ...


def estimate_prompt(messages: Sequence[dict[str, Any]], images: Iterable[HasTokens] | None = None) -> int:
    """Estimated prompt tokens of a request: its texts by the conversation planner's rule, every
    message's framing, and each image sent by the provider's rule (Qwen2.5-VL's 28x28 blocks of the
    prepared size): ``images``' own ``tokens`` (``PreparedImage``), or else read from the size of each
    image the messages carry."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            if part.get("type") == "text":
                total += estimate_text_tokens(part.get("text", ""))
            elif part.get("type") == "image_url" and images is None:
                total += _image_tokens(part)
    return total + sum(image.tokens for image in images or ())


def _image_tokens(part: dict[str, Any]) -> int:
    """Qwen's tokens for an image part, from the image's own header (its first bytes are enough)."""
    url = str(part.get("image_url", {}).get("url", ""))
    data = url.partition(",")[2]
    for chars in (_HEADER_CHARS, len(data)):
        try:
            with Image.open(io.BytesIO(base64.b64decode(data[: chars - chars % 4]))) as image:
                return qwen_image_tokens(*image.size)
        except (OSError, ValueError):
            continue
    return qwen_image_tokens(QWEN_MAX_SIDE, QWEN_MAX_SIDE)  # unreadable: the most it can cost


class MeteredVision:
    """``vision`` for the requests of one :class:`~bot.guard.budget.Admission`."""

    def __init__(self, admission: Admission, vision: VisionClient) -> None:
        self.admission = admission
        self.vision = vision

    def stream(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
        on_thinking: Callable[[], None] | None = None,
        estimate: int | None = None,
    ) -> MeteredStream:
        """A stream that reserves ``estimate`` (prompt tokens; default: :func:`estimate_prompt` of the
        messages) plus its ``max_tokens`` (at most the feature's) on its first iteration."""
        cap = self.admission.max_tokens if max_tokens is None else min(max_tokens, self.admission.max_tokens)
        inner = self.vision.stream(
            messages, temperature=temperature, max_tokens=cap, response_format=response_format, on_thinking=on_thinking
        )
        prompt = estimate_prompt(messages) if estimate is None else estimate
        return MeteredStream(self.admission, inner, prompt, cap)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
        estimate: int | None = None,
    ) -> Completion:
        stream = self.stream(
            messages, estimate=estimate, temperature=temperature, max_tokens=max_tokens, response_format=response_format
        )
        async with stream:
            async for _ in stream:
                pass
        return Completion(stream.text, stream.usage, stream.finish_reason)


class MeteredStream(ClosingStream):
    """A :class:`~bot.vlm.VisionStream` with its reservation around it (same attributes)."""

    def __init__(self, admission: Admission, inner: VisionStream, estimate: int, max_tokens: int) -> None:
        self._admission = admission
        self._inner = inner
        self._estimate = estimate
        self._max_tokens = max_tokens
        self._reservation: Reservation | None = None
        self._refused = False

    @property
    def text(self) -> str:
        return self._inner.text

    @property
    def usage(self) -> Usage | None:
        return self._inner.usage

    @property
    def finish_reason(self) -> str | None:
        return self._inner.finish_reason

    async def __anext__(self) -> str:
        if self._refused:
            raise StopAsyncIteration
        if self._reservation is None:
            outcome = await self._admission.reserve(self._estimate + self._max_tokens)
            if isinstance(outcome, Refusal):
                self._refused = True
                await self._inner.aclose()  # never sent
                raise LimitReached(outcome)
            self._reservation = outcome
        try:
            delta = await self._inner.__anext__()
            if self._reservation.extension_due():  # a long answer keeps its tokens (a clock read otherwise)
                await self._reservation.extend()
            return delta
        except StopAsyncIteration:
            # The answer is complete: let its reader show it at once and count the cost meanwhile
            # (aclose waits for it); an inline store write here would hold back the final edit.
            self._end()
            raise
        except BaseException:
            await self._settle()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()
        await self._settle()

    async def _settle(self) -> None:
        ending = self._end()
        if ending is not None:
            await asyncio.shield(ending)

    def _end(self) -> asyncio.Task[None] | None:
        """Start settling what was spent: the provider's usage; without one (stopped early), our
        estimate of what was consumed; nothing when no text came (the request failed, or was stopped
        before its first word). Only the first call counts."""
        if self._reservation is None:
            return None
        usage = self._inner.usage
        if usage is not None:
            spent: Spent | None = Spent(usage.prompt_tokens, usage.completion_tokens)
        elif self._inner.text:
            spent = Spent(self._estimate, estimate_text_tokens(self._inner.text))
        else:
            spent = None
        return self._reservation.end(spent)
