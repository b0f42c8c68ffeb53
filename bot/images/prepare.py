"""Attachment bytes -> :class:`PreparedImage`: bounded, normalised, resized and encoded for the model.

Every input ends as a :class:`PreparedImage` (or a list of them) or as :class:`ImageRejected` with a
sentence a Discord user understands; never another exception, never a hang. The limits and the Pillow
plumbing live in :mod:`bot.images.codec`, the size policy in :mod:`bot.images.policy`.

The prepare functions are blocking; the bot calls them through :class:`ImageWorker`, off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
import struct
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from PIL import Image

from bot.images import animation, codec, policy
from bot.images.budget import MemoryGate
from bot.images.codec import MAX_DATA_URL_CHARS, MAX_INPUT_BYTES, MAX_PIXELS, ImageRejected
from bot.images.policy import Detail, qwen_image_tokens

__all__ = [
    "MAX_DATA_URL_CHARS",
    "MAX_INPUT_BYTES",
    "MAX_PIXELS",
    "Detail",
    "ImageRejected",
    "ImageWorker",
    "PreparedImage",
    "prepare_image",
    "prepare_text_images",
    "qwen_image_tokens",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

ANIMATION_FRAMES = 4
"""Default frames of an animation on its contact sheet (``ANIMATION_FRAMES``)."""
_SHRINK_STEP = 0.8  # when no quality setting fits the payload limit, shrink by this and retry

# Encoder settings tried in order until the data URL fits. Measured on a 1536x864 screenshot: JPEG
# 4:4:4 q85 is 192 KB, PNG of the downscaled image 362 KB (resampling breaks PNG's compression).
_PHOTO_STEPS = ({"quality": 85}, {"quality": 75}, {"quality": 65})
_GRAPHIC_STEPS = ({"quality": 85, "subsampling": 0}, {"quality": 75}, {"quality": 65})
_TEXT_STEPS = ({"quality": 92, "subsampling": 0}, {"quality": 85, "subsampling": 0}, {"quality": 75})


@dataclass(frozen=True, slots=True)
class PreparedImage:
    data: bytes
    mime: str
    width: int
    height: int
    detail: Detail
    tokens: int
    frames: int = 1
    """Frames of an animation laid out in this one image (a contact sheet, numbered in order)."""

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def sha256(self) -> str:
        """Hex digest of :attr:`data`, the key the store files the image under."""
        return hashlib.sha256(self.data).hexdigest()

    def content_part(self) -> dict[str, Any]:
        """The OpenAI-style content part carrying this image."""
        return {"type": "image_url", "image_url": {"url": self.data_url, "detail": self.detail}}

    def __repr__(self) -> str:  # the bytes would flood logs
        return (f"PreparedImage(mime={self.mime!r}, width={self.width}, height={self.height}, "
                f"detail={self.detail!r}, tokens={self.tokens}, frames={self.frames}, bytes={len(self.data)})")


def _encode(
    image: Image.Image, steps: tuple[dict[str, Any], ...], detail: Detail, *, try_png: bool = False, frames: int = 1
) -> PreparedImage:
    """Encode ``image`` (RGB) with the first settings whose data URL fits, shrinking if none does."""
    while True:
        if try_png:
            png = codec.save(image, "PNG")
            if codec.fits(len(png), "image/png"):
                return _prepared(png, "image/png", image, detail, frames)
        for params in steps:
            jpeg = codec.save(image, "JPEG", **params)
            if codec.fits(len(jpeg), "image/jpeg"):
                return _prepared(jpeg, "image/jpeg", image, detail, frames)
        smaller = (max(1, int(image.width * _SHRINK_STEP)), max(1, int(image.height * _SHRINK_STEP)))
        if smaller == image.size:  # cannot happen with real encoders; never loop forever regardless
            raise ImageRejected("Something went wrong while reading that image.")
        log.debug("%sx%s does not fit the payload limit; shrinking to %s", *image.size, smaller)
        image, try_png = codec.resize(image, smaller), False


def _prepared(data: bytes, mime: str, image: Image.Image, detail: Detail, frames: int = 1) -> PreparedImage:
    return PreparedImage(data=data, mime=mime, width=image.width, height=image.height, detail=detail,
                         tokens=qwen_image_tokens(image.width, image.height), frames=frames)


# --- the two policies -----------------------------------------------------------------------------

def _guarded(fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn``, turning every failure into :class:`ImageRejected`: damage quietly, surprises loudly."""
    try:
        return fn(*args)
    except ImageRejected:
        raise
    except Image.DecompressionBombError:
        raise ImageRejected(codec.TOO_MANY_PIXELS) from None
    except (OSError, SyntaxError, EOFError, ValueError, struct.error) as error:
        log.debug("image refused as damaged: %r", error)
        raise ImageRejected(codec.DAMAGED) from None
    except Exception:
        log.warning("unexpected failure while preparing an image", exc_info=True)
        raise ImageRejected("Something went wrong while reading that image.") from None


def prepare_image(data: bytes, *, detail: Detail = "auto", frames: int = ANIMATION_FRAMES) -> PreparedImage:
    """Prepare an image for description and conversation: resized by ``detail``, JPEG-encoded.

    ``low`` keeps a 512 px long side, ``high`` 1536 px; ``auto`` keeps 1536 px for flat graphics
    (screenshots, documents, memes) and 1024 px for photos. Images are never enlarged. An animation
    becomes one contact sheet of up to ``frames`` frames (see :mod:`bot.images.animation`).
    Raises :class:`ImageRejected` for any input it cannot use.
    """
    if detail not in ("auto", "low", "high"):
        raise ValueError(f"detail must be auto, low or high, not {detail!r}")
    return _guarded(_prepare_image, bytes(data), detail, frames)


def _decode_within(source: Image.Image, cap: int) -> Image.Image:
    return codec.working_mode(codec.decode(source, cap, tolerance=policy.DRAFT_TOLERANCE))


def _prepare_image(data: bytes, detail: Detail, frames: int) -> PreparedImage:
    source = codec.open_image(data)
    original = source.size
    codec.check_ratio(*original)
    sheet = animation.contact_sheet(source, frames, animation.sheet_long_side(detail))
    if sheet is not None:
        image, count = sheet
        return _encode(image, _GRAPHIC_STEPS, detail, frames=count)
    # A JPEG is drafted for the photo size first (the common, fast case); should it turn out to be
    # a flat graphic, which deserves more pixels, it is decoded again at the larger size.
    cap = policy.long_side_cap(detail, graphic=False)
    image = _decode_within(source, cap)
    del source  # the working copy is all that is needed: never two full-size images for long
    graphic = policy.looks_like_graphic(image)
    if graphic and detail == "auto":
        cap = policy.long_side_cap(detail, graphic=True)
        if max(image.size) < min(cap, max(original)):
            image = _decode_within(codec.open_image(data), cap)
    unscaled = max(image.size) == max(original) <= cap
    image = codec.finish(codec.resize(image, policy.fit_within(*image.size, cap)))
    if graphic and unscaled and max(image.size) <= policy.PHOTO_LONG_SIDE:
        # Unscaled small graphics (logos, diagrams, stickers) are often smaller and crisper as PNG.
        png = codec.save(image, "PNG")
        jpeg = codec.save(image, "JPEG", **_GRAPHIC_STEPS[0])
        if len(png) <= len(jpeg) and codec.fits(len(png), "image/png"):
            return _prepared(png, "image/png", image, detail)
    return _encode(image, _GRAPHIC_STEPS if graphic else _PHOTO_STEPS, detail)


def _passthrough(data: bytes, image: Image.Image, orientation: int) -> PreparedImage | None:
    """The original bytes, when the provider can take them as they are and nothing would improve."""
    mime = {"PNG": "image/png", "JPEG": "image/jpeg"}.get(image.format or "")
    if mime is None or orientation != 1 or not codec.fits(len(data), mime):
        return None
    if image.mode not in ("RGB", "L") and not (image.mode == "P" and not image.has_transparency_data):
        return None
    if mime == "image/jpeg" and "exif" in image.info:  # re-encode to drop EXIF (GPS, camera serial)
        return None
    if image.width > policy.TEXT_MAX_WIDTH or policy.needs_tiles(*image.size):
        return None
    return PreparedImage(data=data, mime=mime, width=image.width, height=image.height, detail="high",
                         tokens=qwen_image_tokens(image.width, image.height))


def prepare_text_images(data: bytes) -> list[PreparedImage]:
    """Prepare an image for transcription: never shrink text until it is illegible.

    A screenshot that fits the payload limit is sent as it is. Wider than
    :data:`~bot.images.policy.TEXT_MAX_WIDTH` it is scaled down to that width. A tall image (a scrolled
    phone screenshot, a receipt) becomes overlapping tiles, top to bottom (see
    :func:`~bot.images.policy.tile_spans`), each one a :class:`PreparedImage` of its own.
    Tiles of an unscaled PNG, GIF, WebP or BMP stay PNG, so no pixel of the text changes.
    Raises :class:`ImageRejected` for any input it cannot use.
    """
    return _guarded(_prepare_text_images, bytes(data))


def _prepare_text_images(data: bytes) -> list[PreparedImage]:
    source = codec.open_image(data)
    orientation = codec.orientation_of(source)
    upright = source.size[::-1] if orientation in (5, 6, 7, 8) else source.size
    scale = min(1.0, policy.TEXT_MAX_WIDTH / upright[0])
    image = codec.decode(source, round(max(upright) * scale) if scale < 1 else None, tolerance=1.0)
    if scale == 1.0:
        passthrough = _passthrough(data, image, orientation)
        if passthrough is not None:
            return [passthrough]
    image = codec.working_mode(image)
    if scale < 1:
        image = codec.resize(image, (policy.TEXT_MAX_WIDTH, max(1, round(upright[1] * scale))), sharp=True)
    image = codec.finish(image)
    lossless = scale == 1.0 and source.format not in codec.JPEG_FORMATS
    if not policy.needs_tiles(*image.size):
        codec.check_ratio(*image.size)
        return [_encode(image, _TEXT_STEPS, "high", try_png=lossless)]
    spans = policy.tile_spans(image.height)
    if len(spans) > policy.TEXT_MAX_TILES:
        raise ImageRejected(f"That image is too tall to read in one go (it would take {len(spans)} parts; "
                            f"the most is {policy.TEXT_MAX_TILES}).")
    codec.check_ratio(image.width, spans[0][1] - spans[0][0])
    return [_encode(image.crop((0, top, image.width, bottom)), _TEXT_STEPS, "high", try_png=lossless)
            for top, bottom in spans]


# --- off the event loop ---------------------------------------------------------------------------

class ImageWorker:
    """A bounded thread pool for image work, so decoding never blocks the event loop or heartbeat.

    At most ``max_queue`` jobs are running or waiting at once. A caller beyond that waits for a
    slot (back-pressure) instead of being refused: every caller has already acknowledged its
    interaction, and the jobs are short. A slot is freed when the job really ends, even if its
    caller was cancelled or timed out, so abandoned work cannot pile up behind the bound.
    Pillow releases the GIL while decoding and resizing, so the threads do run in parallel.

    Before a prepare job starts, its decoded size is read from the header and held in ``memory``
    (``IMAGE_MEMORY_MB``) until it ends: a flood of small files that decode to huge images waits its
    turn instead of holding gigabytes at once (one larger than the whole budget runs alone).
    """

    def __init__(
        self,
        max_workers: int = 2,
        max_queue: int = 16,
        *,
        job_timeout: float = 30.0,
        memory: MemoryGate | None = None,
        animation_frames: int = ANIMATION_FRAMES,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        if max_workers < 1 or max_queue < 1:
            raise ValueError("max_workers and max_queue must be at least 1")
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="glimpse-image")
        self._slots = asyncio.Semaphore(max_queue)
        self._job_timeout = job_timeout
        self.memory = memory if memory is not None else MemoryGate()
        self.animation_frames = animation_frames
        self._on_wait = on_wait  # told how long each job waited for a thread (called from that thread)

    async def prepare(self, data: bytes, *, detail: Detail = "auto") -> PreparedImage:
        """:func:`prepare_image` in the pool; a job running past ``job_timeout`` is refused."""
        return await self._bounded(functools.partial(prepare_image, detail=detail, frames=self.animation_frames), data)

    async def prepare_text_images(self, data: bytes) -> list[PreparedImage]:
        """:func:`prepare_text_images` in the pool; a job running past ``job_timeout`` is refused."""
        return await self._bounded(prepare_text_images, data)

    async def _bounded(self, fn: Callable[[bytes], _T], data: bytes) -> _T:
        async with self.memory.hold(codec.decoded_bytes(data)):  # waiting for room is not the job's time
            return await self._timed(fn, data)

    async def _timed(self, fn: Callable[[bytes], _T], data: bytes) -> _T:
        try:
            async with asyncio.timeout(self._job_timeout):
                return await self.run(fn, data)
        except TimeoutError:
            log.warning("image job gave up after %.0f s (%d bytes)", self._job_timeout, len(data))
            raise ImageRejected("That image took too long to process.") from None

    async def run(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """Run ``fn(*args)`` in the pool and return its result (its exceptions propagate)."""
        queued = time.monotonic()
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        on_wait = self._on_wait

        def job() -> _T:
            if on_wait is not None:
                on_wait(time.monotonic() - queued)
            return fn(*args)

        try:
            future = self._executor.submit(job)
        except BaseException:
            self._slots.release()
            raise

        def free_slot(_: Future[_T]) -> None:
            # A closed loop raises RuntimeError: then nobody is left waiting for a slot.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._slots.release)

        future.add_done_callback(free_slot)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop taking work and drop queued jobs; running ones finish in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)
