"""Live replies: a stream of text deltas turned into Discord messages that grow as the text does.

A :class:`LiveReply` shows a placeholder at once, then a background *editor* task publishes the
newest text whenever the channel's :class:`~bot.replies.pacing.ChannelPacer` grants a slot: one request
per slot, the lowest message whose content changed first, continuation messages created as the
text outgrows a message. Intermediate texts are never queued (the newest text wins), so the
stream consumer never waits on Discord. The final state is exactly
:func:`~bot.replies.textsplit.split_message` of the whole text (plus an optional note).

Typical use in a cog::

    reply = LiveReply(MessageSink(message), bot.pacer, registry=bot.live)
    try:
        await reply.start()
        await reply.stream(vision.stream(...))
    except VisionError as exc:
        await reply.fail(exc.reason)
    except ReplyDeleted:
        return  # the upstream request has been closed already
    else:
        await reply.finish()

A reply is stopped the moment any of its messages is deleted: it registers each message it posts in a
:class:`~bot.replies.registry.LiveRegistry`, whose deletion listener calls :meth:`LiveReply.mark_deleted`
(so a model still silent before its first word is not waited for); a 404 on an edit does the same.
The messages are unregistered once ``finish`` or ``fail`` is done, or ``stream`` raised.

Errors raised by the delta iterator reach the caller unchanged (after the editor has stopped), so
the caller decides what to say with :meth:`LiveReply.fail`. ``finish`` and ``fail`` never raise
Discord errors: they log them and add an error line where Discord still lets them. Neither they nor
the editor raise when the connection to Discord is gone (the bot is closing): that is logged at INFO.

Longer than 400 lines on purpose: the reply and its editor task share one state (what each message
shows, what it should show), and the rules above hold only if that state is read in one place.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp
import discord

from bot.replies.pacing import ChannelPacer
from bot.replies.registry import LiveRegistry
from bot.replies.sinks import ReplySink
from bot.replies.textsplit import DISCORD_LIMIT, Wrap, render_live, render_preview
from bot.vlm import ReplyDeleted

log = logging.getLogger(__name__)

EMPTY_ANSWER = "The model returned no text."
WARNING = "⚠️"
PREVIEW_CHARS = 1500
# Consecutive failed edits after which the editor stops trying until the final edit.
_MAX_EDIT_FAILURES = 3


def connection_lost(exc: BaseException) -> bool:
    """What a request raises once the bot is closing: a dropped connection, or aiohttp's
    ``RuntimeError("Session is closed")`` when discord.py's HTTP session closed while the request
    waited its turn. Any other ``RuntimeError`` is a bug and is reported as one."""
    if isinstance(exc, aiohttp.ClientError):
        return True
    return isinstance(exc, RuntimeError) and "Session is closed" in str(exc)


@dataclass(frozen=True)
class _Target:
    """What the reply's messages should show; ``file_text`` is attached to the last one."""

    contents: list[str]
    file_text: str | None = None


class LiveReply:
    """One reply that grows with a stream of text. See the module docstring for the life cycle.

    ``wrap``: draw every chunk inside spoiler bars or a code block (see :class:`Wrap`).
    ``overflow``: a text longer than one message continues in further messages (``"continue"``),
    or stays one message with a preview and the whole text attached as ``attachment_name``
    (``"attach"``). ``min_interval``: the least time between two requests of this reply (default:
    the pacer's window over ``rate - 1``, so one reply alone edits evenly instead of in bursts and
    keeps one slot free for the final edit); the first edit with text ignores it, so the first words
    appear as soon as they arrive. ``registry``: where the reply's messages are registered so that
    their deletion stops it at once (the bot's ``bot.live``; None: a deletion is noticed on the next edit).
    """

    def __init__(
        self,
        sink: ReplySink,
        pacer: ChannelPacer,
        *,
        wrap: Wrap | None = None,
        overflow: Literal["continue", "attach"] = "continue",
        attachment_name: str = "text.txt",
        placeholder: str = "…",
        limit: int = DISCORD_LIMIT,
        preview_chars: int = PREVIEW_CHARS,
        min_interval: float | None = None,
        registry: LiveRegistry | None = None,
    ) -> None:
        self._sink = sink
        self._pacer = pacer
        self._wrap = wrap
        self._overflow = overflow
        self._attachment_name = attachment_name
        self._placeholder = placeholder
        self._limit = limit
        self._preview_chars = min(preview_chars, limit)
        # Live edits use all but one slot of the channel's window; the spare one lets the final edit
        # show the complete answer the moment it is done instead of a slot later.
        steady = pacer.window / max(pacer.rate - 1, 1)
        self._min_interval = steady if min_interval is None else min_interval
        self._parts: list[str] = []
        self._shown: list[str] = []  # what each message shows now, as last sent successfully
        self._registry = registry
        self._message_ids: list[int] = []  # those registered in the registry
        self._attached = False
        self._started = False
        self._changed = asyncio.Event()
        self._deleted = asyncio.Event()
        self._editor: asyncio.Task[None] | None = None
        self._in_request = False
        self._stopping = False
        self._last_request_at = -math.inf
        self._requests = 0  # sends and edits made, for the registry's metrics
        self._reported = False

    @property
    def text(self) -> str:
        """The text received so far."""
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def deleted(self) -> bool:
        return self._deleted.is_set()

    def mark_deleted(self) -> None:
        """One of the reply's messages is gone: stop the stream (closing the upstream request) and
        make no further request. Called by the deletion listener; safe to call at any time."""
        self._deleted.set()

    @property
    def messages(self) -> list[str]:
        """What the reply's messages show now (as far as we know)."""
        return list(self._shown)

    async def start(self) -> None:
        """Post the placeholder (through the pacer). Raises :class:`ReplyDeleted` if that is refused
        because the channel or interaction is gone; other Discord errors propagate."""
        if self._started:
            return
        self._started = True
        try:
            await self._sync_all(_Target([self._placeholder]))
        except ReplyDeleted:
            self._deleted.set()
            raise

    async def stream(self, deltas: AsyncIterable[str]) -> str:
        """Consume ``deltas`` while the editor publishes them; return the whole text.

        Raises :class:`ReplyDeleted` (after closing the delta iterator, which cancels the upstream
        request) if the reply disappears; re-raises whatever the iterator raises.
        """
        try:
            return await self._stream(deltas)
        except BaseException:
            self._unregister()  # the caller may still ``fail``: that registers what it posts anew
            raise

    async def _stream(self, deltas: AsyncIterable[str]) -> str:
        iterator = aiter(deltas)
        try:
            await self.start()
            if self.deleted:  # while the caller was still preparing the request: send none
                raise ReplyDeleted("the reply was deleted before the stream began")
        except BaseException:
            await _aclose(iterator, deltas)
            raise
        self._editor = asyncio.create_task(self._edit_loop(), name="live-reply-editor")
        consumer = asyncio.create_task(self._consume(iterator), name="live-reply-consumer")
        deleted = asyncio.create_task(self._deleted.wait())
        try:
            await asyncio.wait({consumer, deleted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            deleted.cancel()
            if not consumer.done():
                consumer.cancel()
                await asyncio.wait({consumer})
            await _aclose(iterator, deltas)  # a no-op for a generator that ran to its end
            await self._halt_editor()
        if self.deleted:
            raise ReplyDeleted("the reply was deleted while streaming")
        error = consumer.exception()
        if error is not None:
            raise error
        return self.text

    async def finish(self, note: str | None = None, *, empty_text: str = EMPTY_ANSWER) -> None:
        """Final edit(s): the messages show exactly ``split_message`` of the text (in the wrap), the
        optional ``note`` on a line of its own at the end; or the preview and the attachment.
        A blank text is shown as ``empty_text`` (plain, outside the wrap), the note under it."""
        try:
            await self._halt_editor()
            if not self.deleted:
                await self._settle(self._final_target(note, empty_text))
        finally:
            self._unregister()
            self._report_finished()

    async def fail(self, reason: str) -> None:
        """Keep the partial text and add ``⚠️ reason`` on a line of its own."""
        try:
            await self._halt_editor()
            if not self.deleted:
                await self._settle(self._error_target(reason))
        finally:
            self._unregister()
            self._report_finished()

    # -- targets ---------------------------------------------------------------------------

    def _live_target(self) -> _Target:
        if not self.text.strip():
            return _Target([self._placeholder])
        return self._partial_target(None)

    def _partial_target(self, line: str | None) -> _Target:
        """The unfinished text (code blocks closed for display) with ``line`` at the end."""
        text = self.text
        chunks = render_live(text, limit=self._limit, wrap=self._wrap)
        if self._overflow == "attach" and len(chunks) > 1:
            return _Target([self._preview(line or f"… {len(text):,} characters so far")])
        return _Target(self._with_line(chunks, line))

    def _final_target(self, note: str | None, empty_text: str) -> _Target:
        text = self.text
        if not text.strip():
            return _Target(self._with_line([empty_text[: self._limit]], note))
        chunks = render_live(text, limit=self._limit, wrap=self._wrap, final=True)
        if self._overflow == "attach" and len(chunks) > 1:
            line = f"The full text ({len(text):,} characters) is attached as {self._attachment_name}."
            if note:
                line += "\n" + note
            return _Target([self._preview(line)], file_text=text)
        return _Target(self._with_line(chunks, note))

    def _error_target(self, reason: str) -> _Target:
        line = f"{WARNING} {reason}"
        if not self.text.strip():
            return _Target([line])
        return self._partial_target(line)

    def _preview(self, line: str) -> str:
        preview = render_preview(self.text, chars=self._preview_chars, wrap=self._wrap)
        return f"{preview}\n{line}"[: self._limit]

    def _with_line(self, chunks: list[str], line: str | None) -> list[str]:
        """``chunks`` with ``line`` added at the end: on the last message if it fits, else its own."""
        if not line:
            return chunks
        if len(chunks[-1]) + 1 + len(line) <= self._limit:
            return [*chunks[:-1], f"{chunks[-1]}\n{line}"]
        return [*chunks, line[: self._limit]]

    # -- requests --------------------------------------------------------------------------

    def _next_index(self, target: _Target) -> int | None:
        """The first message that differs from ``target`` (or lacks its attachment), if any."""
        for index, content in enumerate(target.contents):
            if index >= len(self._shown) or self._shown[index] != content:
                return index
        if target.file_text is not None and not self._attached:
            return len(target.contents) - 1
        return None

    async def _request(self, render: Callable[[], _Target]) -> bool:
        """Take one slot and send the first change of the newest target; False if none was due."""
        if self._next_index(render()) is None:
            return False
        async with self._pacer.slot(self._sink.channel_id):
            target = render()  # the text may have grown while we waited for the slot
            index = self._next_index(target)
            if index is None:
                return False
            self._in_request = True
            self._last_request_at = self._pacer.now()  # spacing counts from starts; the pacer
            try:  # stamps completions, so a slow request still cannot crowd Discord's window
                await self._perform(target, index)
            finally:
                self._in_request = False
        return True

    async def _perform(self, target: _Target, index: int) -> None:
        content = target.contents[index]
        self._requests += 1
        file = None
        if target.file_text is not None and index == len(target.contents) - 1:
            data = io.BytesIO(target.file_text.encode("utf-8"))
            file = discord.File(data, filename=self._attachment_name)
        try:
            if index < len(self._shown):
                await self._sink.edit(index, content, file=file)
                self._shown[index] = content
            else:
                message_id = await self._sink.send(content, file=file)
                self._shown.append(content)
                if message_id is not None and self._registry is not None:
                    self._message_ids.append(message_id)
                    self._registry.register(message_id, self)
        except discord.NotFound as exc:
            raise ReplyDeleted(str(exc)) from exc
        if file is not None:
            self._attached = True
        log.debug("live reply: message %d now %d chars", index, len(content))

    async def _sync_all(self, target: _Target) -> None:
        while await self._request(lambda: target):
            pass

    async def _settle(self, target: _Target) -> None:
        """Bring the messages to ``target``; on failure log and add an error line if possible."""
        try:
            await self._sync_all(target)
        except ReplyDeleted:
            self._deleted.set()
            log.info("live reply deleted before its final edit")
        except discord.HTTPException as exc:
            log.warning("live reply: final edit refused (%s %s)", exc.status, exc.text)
            if not self._shown:
                return
            line = f"{WARNING} Discord refused to show the rest of this answer."
            try:
                await self._sync_all(_Target(self._with_line(self._shown, line)))
            except (ReplyDeleted, discord.HTTPException):
                pass
            except Exception as again:
                if not connection_lost(again):
                    log.exception("live reply: the error line failed")
        except Exception as exc:
            if not connection_lost(exc):
                log.exception("live reply: the final edit failed")
                return
            log.info("live reply: no connection to Discord for the final edit (%r)", exc)

    def _report_finished(self) -> None:
        if self._registry is not None and not self._reported:
            self._reported = True
            self._registry.finished(self._requests)

    def _unregister(self) -> None:
        for message_id in self._message_ids:
            assert self._registry is not None  # ids are only kept when registered
            self._registry.unregister(message_id)
        self._message_ids.clear()

    # -- the editor ------------------------------------------------------------------------

    async def _consume(self, iterator: AsyncIterator[str]) -> None:
        async for delta in iterator:
            if delta:
                self._parts.append(delta)
                self._changed.set()

    async def _edit_loop(self) -> None:
        failures = 0
        while not self._stopping:
            await self._changed.wait()
            self._changed.clear()
            wait = self._last_request_at + self._min_interval - self._pacer.now()
            if wait > 0 and self._shown != [self._placeholder]:  # the first words go out at once
                await asyncio.sleep(wait)
            try:
                done = await self._request(self._live_target)
            except ReplyDeleted:
                self._deleted.set()
                return
            except discord.HTTPException as exc:
                failures += 1
                log.warning("live reply: edit failed (%s %s), try %d", exc.status, exc.text, failures)
                if failures >= _MAX_EDIT_FAILURES:
                    return  # leave it to the final edit
                self._changed.set()
                continue
            except Exception as exc:  # a background task: never leave an exception unretrieved
                if connection_lost(exc):
                    log.info("live reply: no connection to Discord (%r), the editor stops", exc)
                else:
                    log.exception("live reply: the editor failed; the final edit decides")
                return
            failures = 0
            if done and self._next_index(self._live_target()) is not None:
                self._changed.set()

    async def _halt_editor(self) -> None:
        """Stop the editor; a request in flight is allowed to finish (its outcome must be known)."""
        task = self._editor
        if task is None or task.done():
            return
        self._stopping = True
        if not self._in_request:
            task.cancel()
        else:
            self._changed.set()
        await asyncio.wait({task})


async def _aclose(*candidates: object) -> None:
    """Close the delta iterator (and its iterable) so the upstream HTTP stream is released."""
    seen: set[int] = set()
    for candidate in candidates:
        close = getattr(candidate, "aclose", None)
        if close is None or id(candidate) in seen:
            continue
        seen.add(id(candidate))
        try:
            await close()
        except Exception:
            log.exception("closing the delta stream failed")
