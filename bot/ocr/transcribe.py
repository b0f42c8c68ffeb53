"""One OCR request: images -> the model (or the offline engine) -> text streamed into a live reply.

The ``/ocr`` cog and the "Extract text" menu call :func:`transcribe_attachments`. Each image gets a
reply message of its own: a code block that grows as the text arrives (a spoilered image: a spoiler
instead), or a short preview with the whole text attached as a ``.txt`` when it does not fit. With
several images, each message starts with a small header naming its image.

``engine="model"`` sends the image as :func:`bot.images.prepare.prepare_text_images` prepares it (one image,
or the ordered tiles of a tall one, one request each, at temperature 0). When the model service
fails before any text was shown, the offline engine reads the image instead, if it is installed, and
the reply says so. ``engine="local"`` uses the offline engine only. No text at all is said plainly.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import discord

from bot.images import AttachmentLike, DownloadFailed, DownloadGate, ImageRejected, ImageWorker, download_held
from bot.images import codec as image_codec
from bot.metrics import counts_as
from bot.ocr.core import (
    NO_TEXT_MESSAGE,
    EngineName,
    Layout,
    OcrEngine,
    OcrError,
    OcrResult,
    TiledTranscript,
    stream_transcription,
)
from bot.replies import (
    DISCORD_LIMIT,
    Button,
    ChannelPacer,
    LiveRegistry,
    LiveReply,
    ReplyDeleted,
    ReplySink,
    ReplyStopped,
    Wrap,
    stop_button,
)
from bot.vlm import CUT_SHORT, INTERNAL_ERROR, STOPPED, Model, ModelStream, VisionError, note_lines

log = logging.getLogger(__name__)

MAX_IMAGES = 4
"""Images read per request; each may take several model requests (tiles), so keep it small."""

OFFLINE_NOTE = "Read by the offline OCR engine (Tesseract)."
FALLBACK_NOTE = "Read by the offline OCR engine (Tesseract) instead: {reason}"
LANGUAGE_NOTE = "The offline engine reads with English data; the language hint is only used by the model."
TOO_MANY = "I read the first {limit} of {count} images."


@dataclass(frozen=True)
class OcrOptions:
    language: str | None = None
    engine: EngineName = "model"
    layout: Layout = "plain"
    asker_id: int | None = None
    """Who asked: they (or a moderator) may stop the reading with its Stop button (none without)."""
    about: int | None = None
    """The message read (Extract text): deleting it deletes the reading (see ``OcrServices.note``)."""


class OfflineReader:
    """The offline engine behind a pool of its own: one thread, at most ``max_queue`` jobs at once.

    Not the shared image worker: a page takes Tesseract from a fraction of a second to several
    seconds of CPU, and the image worker's two threads prepare every image of every feature, so OCR
    there would stall descriptions and conversation. One thread also keeps OCR to one of the
    machine's cores and one loaded model (the engine keeps one Tesseract instance per thread).
    """

    def __init__(self, engine: OcrEngine, *, max_queue: int = 8) -> None:
        self.engine = engine
        self._worker = ImageWorker(max_workers=1, max_queue=max_queue)

    def available(self) -> bool:
        return self.engine.available()

    @property
    def why_unavailable(self) -> str:
        return self.engine.why_unavailable

    async def read(self, data: bytes) -> str:
        """The text in the image ``data``; "" when there is none. Raises :class:`ImageRejected` for a
        file the image limits refuse, :class:`OcrError` when the engine cannot read it."""
        return await self._worker.run(self._read, data)

    def _read(self, data: bytes) -> str:
        image_codec.open_image(data)  # the same format, byte and pixel limits as for the model
        return self.engine.transcribe(data)

    def close(self) -> None:
        self._worker.close()
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class OcrServices:
    """The services one OCR request uses: the model as metered for the asker (``bot.guard.MeteredVision``
    over ``bot.vision``), ``bot.images``, ``bot.pacer``, ``bot.downloads``, ``bot.live``; ``note(channel,
    message read, message posted)`` keeps in the store which messages are about the message read."""

    vision: Model
    images: ImageWorker
    pacer: ChannelPacer
    offline: OfflineReader
    downloads: DownloadGate
    live: LiveRegistry | None = None
    note: Callable[[int, int, int], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Source:
    """One downloaded attachment, or why it could not be. ``held``: the bytes it counts against the
    download gate until :meth:`let_go`."""

    name: str
    data: bytes | None = None
    problem: str | None = None
    spoiler: bool = False
    held: int = 0

    def let_go(self, gate: DownloadGate) -> None:
        if self.data is not None:
            gate.release(self.held)


class SectionSink:
    """One image's messages in a reply with several: after the previous images' messages, each under
    a header. A :class:`LiveReply` with ``overflow="attach"`` keeps to one message, two when it
    continues in the channel at an interaction's hand-over. ``counter`` numbers the messages of the
    whole reply (shared by its sections)."""

    def __init__(self, sink: ReplySink, counter: Iterator[int], header: str | None) -> None:
        self._sink = sink
        self._counter = counter
        self._indexes: list[int] = []  # this section's messages, as the whole reply numbers them
        self._prefix = f"{header}\n" if header else ""

    @property
    def channel_id(self) -> int:
        return self._sink.channel_id

    @property
    def room(self) -> int:
        """Characters left for the reply's own content."""
        return DISCORD_LIMIT - len(self._prefix)

    async def send(
        self, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> int | None:
        message_id = await self._sink.send(self._prefix + content, file=file, buttons=buttons)
        self._indexes.append(next(self._counter))
        return message_id

    async def edit(
        self, index: int, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> None:
        await self._sink.edit(self._indexes[index], self._prefix + content, file=file, buttons=buttons)

    async def typing(self) -> None:
        await self._sink.typing()

    def handover_in(self) -> float:
        return self._sink.handover_in()

    def hand_over(self) -> str | None:
        return self._sink.hand_over()


@dataclass
class _Outcome:
    text: str = ""
    engine: EngineName = "model"
    notes: list[str] = field(default_factory=list)


@counts_as("ocr")
async def transcribe_attachments(
    sink: ReplySink,
    attachments: Sequence[AttachmentLike],
    options: OcrOptions,
    services: OcrServices,
) -> list[OcrResult | None]:
    """Transcribe up to :data:`MAX_IMAGES` attachments, one after the other, each into its own message.

    Returns one result per image read (None where it failed; the failure was shown). Never raises
    for what users can cause; a reply deleted meanwhile simply ends the work.
    """
    notes = [TOO_MANY.format(limit=MAX_IMAGES, count=len(attachments))] if len(attachments) > MAX_IMAGES else []
    gate = services.downloads
    # Attachment URLs are signed and expire: every fetch starts now (each as soon as the download
    # budget has room); the images are read one by one, each one's bytes let go once it is read.
    # Reading never waits for a later fetch, so a request larger than the budget cannot stall itself.
    fetches = [asyncio.create_task(_fetch(a, gate)) for a in attachments[:MAX_IMAGES]]
    count = len(fetches)
    pending = deque(fetches)
    results: list[OcrResult | None] = []
    counter = itertools.count()
    try:
        for index in range(count):
            source = await pending[0]
            pending.popleft()  # only now: a fetch done as this task is cancelled is let go by _abandon
            header = _header(index, count, source.name) if count > 1 else None
            section = SectionSink(sink, counter, header)
            last = index == count - 1
            try:
                result = await _transcribe_one(section, source, options, services, notes if last else [])
            except (ReplyDeleted, ReplyStopped) as stop:
                log.info("OCR reply %s; stopping", "stopped" if isinstance(stop, ReplyStopped) else "deleted")
                results.append(None)
                break
            finally:
                source.let_go(gate)
            results.append(result)
    finally:
        await _abandon(pending, gate)
    return results


async def _fetch(attachment: AttachmentLike, gate: DownloadGate) -> Source:
    """The attachment's bytes, counted against ``gate`` until :meth:`Source.let_go`, or the plain
    reason why not (too large to fetch, gone)."""
    name, spoiler = attachment.filename, attachment.is_spoiler()
    try:
        data, held = await download_held(attachment, gate)
    except DownloadFailed as failed:
        return Source(name, problem=failed.reason, spoiler=spoiler)
    return Source(name, data=data, spoiler=spoiler, held=held)


async def _abandon(fetches: Iterable[asyncio.Task[Source]], gate: DownloadGate) -> None:
    """Stop fetches that will not be read (the reply was deleted, or the request failed) and let go
    of what they already hold."""
    fetches = list(fetches)
    for fetch in fetches:
        fetch.cancel()
    for outcome in await asyncio.gather(*fetches, return_exceptions=True):
        if isinstance(outcome, Source):
            outcome.let_go(gate)


def _header(index: int, count: int, name: str) -> str:
    return f"-# Image {index + 1} of {count}: {discord.utils.escape_markdown(name[:80])}"


def text_file_name(image_name: str) -> str:
    """``receipt.png`` -> ``receipt.txt``: the name of the attachment holding a long transcription."""
    stem = re.sub(r"[^\w.-]+", "_", PurePath(image_name).stem).strip("._")[:60]
    return f"{stem or 'text'}.txt"


async def _transcribe_one(
    sink: SectionSink, source: Source, options: OcrOptions, services: OcrServices, notes: list[str]
) -> OcrResult | None:
    about, note = options.about, services.note

    async def posted(message_id: int) -> None:
        if about is not None and note is not None:
            await note(sink.channel_id, about, message_id)

    reply = LiveReply(
        sink,
        services.pacer,
        wrap=Wrap.SPOILER if source.spoiler else Wrap.CODE,
        overflow="attach",
        attachment_name=text_file_name(source.name),
        limit=sink.room,
        registry=services.live,
        stop=None if options.asker_id is None else stop_button(options.asker_id),
        about=about,
        on_posted=posted,
    )
    await reply.start()
    if source.data is None:
        await reply.fail(source.problem or INTERNAL_ERROR)
        return None
    try:
        outcome = await _read(reply, source.data, options, services)
    except ReplyDeleted:
        raise
    except ReplyStopped:
        await reply.finish(note_lines([STOPPED]))
        raise
    except VisionError as error:
        log.info("OCR model request failed (%s): %s", error.kind, error.detail or error.reason)
        await reply.fail(error.reason)
        return None
    except ImageRejected as rejected:
        await reply.fail(rejected.reason)
        return None
    except OcrError as error:
        await reply.fail(str(error))
        return None
    except Exception:
        log.exception("OCR failed")
        await reply.fail(INTERNAL_ERROR)
        return None
    outcome.notes.extend(notes)
    note = note_lines(outcome.notes)
    log.info("OCR read %s with the %s engine: %d characters", source.name, outcome.engine, len(outcome.text))
    await reply.finish(note, empty_text=NO_TEXT_MESSAGE)
    return OcrResult(outcome.text, outcome.engine, note)


async def _read(reply: LiveReply, data: bytes, options: OcrOptions, services: OcrServices) -> _Outcome:
    """Stream the text into ``reply`` with the chosen engine, falling back to the offline one."""
    if options.engine == "local":
        notes = [OFFLINE_NOTE]
        if options.language and not options.language.strip().lower().startswith(("en", "eng")):
            notes.append(LANGUAGE_NOTE)
        return _Outcome(await _read_offline(reply, data, services), "local", notes)
    try:
        return await _read_with_model(reply, data, options, services)
    except VisionError as error:
        # Text already shown cannot be replaced by another engine's reading: then the error stands.
        if reply.text or not services.offline.available():
            raise
        log.info("OCR model request failed (%s); reading offline instead", error.kind)
        try:
            text = await _read_offline(reply, data, services)
        except OcrError as offline_error:
            raise OcrError(f"{error.reason} The offline engine failed too: {offline_error}") from offline_error
        return _Outcome(text, "local", [FALLBACK_NOTE.format(reason=error.reason)])


async def _read_with_model(reply: LiveReply, data: bytes, options: OcrOptions, services: OcrServices) -> _Outcome:
    images = await services.images.prepare_text_images(data)
    streams: list[ModelStream] = []

    def start(messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        stream = services.vision.stream(messages, temperature=0)
        streams.append(stream)
        return _empty_means_no_text(stream)

    transcript = TiledTranscript()
    deltas = stream_transcription(
        start, images, language=options.language, layout=options.layout, transcript=transcript
    )
    try:
        await reply.stream(deltas)
    finally:
        for stream in streams:
            await stream.aclose()
    notes = [CUT_SHORT] if any(stream.finish_reason == "length" for stream in streams) else []
    if len(images) > 1:
        log.debug("OCR read %d tiles", len(images))
    return _Outcome(transcript.text, "model", notes)


async def _empty_means_no_text(stream: ModelStream) -> AsyncIterator[str]:
    """An empty answer is no text (a blank tile of a tall image), not a failure of the request."""
    try:
        async for delta in stream:
            yield delta
    except VisionError as error:
        if error.kind != "empty":
            raise


async def _read_offline(reply: LiveReply, data: bytes, services: OcrServices) -> str:
    async def whole() -> AsyncIterator[str]:
        text = await services.offline.read(data)
        if text:
            yield text

    return await reply.stream(whole())
