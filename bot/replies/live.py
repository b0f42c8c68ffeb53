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

While it streams, the reply's last message carries a ``stop`` button (if given); :meth:`LiveReply.stop`
(the click) closes the model request at once and ``stream`` raises :class:`ReplyStopped` with the text so
far. ``finish`` puts the buttons its caller chose for the answer (``controls``) on the last message.
Buttons are part of what a message shows, so they come and go on the same paced edits as the text.

While a reasoning model thinks (:meth:`LiveReply.thinking`), the placeholder says so with the seconds
elapsed. When the channel has no free slot for the placeholder, none is sent: the typing indicator
covers the wait and the first message carries whatever text exists once a slot frees.

A reply is stopped the moment any of its messages is deleted: it registers each message it posts in a
:class:`~bot.replies.registry.LiveRegistry`, whose deletion listener calls :meth:`LiveReply.mark_deleted`
(so a model still silent before its first word is not waited for); a 404 on an edit does the same.
The messages are unregistered once ``finish`` or ``fail`` is done, or ``stream`` raised. A reply
``about`` a message (its question) is registered under that id too, and withdrawn when it is deleted
(:meth:`LiveReply.withdraw`: stopped, nothing more posted, so every message it posted can be deleted);
``on_posted`` hears each message id as it is posted (the store's record of the replies about a message).

A sink whose messages stop being editable (an interaction's, whose token ends after 15 minutes) says
when (``handover_in``); at that moment, during the stream or while finishing, the reply hands over: the
messages posted so far are made final where they stand (:meth:`Layout.seal`: the last one up to its
last complete line, without buttons) and the rest of the text continues in new messages, which the
sink then posts where they stay editable (the channel), so nothing is lost, repeated, or sent with an
expired token. Where the sink cannot move on (a private reply; no permission to post), the reply ends
there instead, with the sink's reason under its text, and ``stream`` raises :class:`ReplyStopped`.

Errors raised by the delta iterator reach the caller unchanged (after the editor has stopped), so
the caller decides what to say with :meth:`LiveReply.fail`. ``finish`` and ``fail`` never raise
Discord errors: they log them and add an error line where Discord still lets them. Neither they nor
the editor raise when the connection to Discord is gone (the bot is closing): that is logged at INFO.

Longer than 400 lines on purpose: the reply and its editor task share one state (what each message
shows, what it should show), and the rules above hold only if that state is read in one place. What a
message should show at each moment is apart, pure, in :mod:`bot.replies.layout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import ClassVar, Literal

import aiohttp
import discord

from bot.replies.controls import Button, Buttons
from bot.replies.layout import PREVIEW_CHARS, WARNING, Layout, SealedLayout, Target
from bot.replies.pacing import ChannelPacer
from bot.replies.registry import LiveRegistry
from bot.replies.sinks import ReplySink
from bot.replies.textsplit import DISCORD_LIMIT, Wrap
from bot.vlm import Completion, ReplyDeleted, ReplyStopped

log = logging.getLogger(__name__)

EMPTY_ANSWER = "The model returned no text."
# Seconds between two updates of the "Thinking... 12s" placeholder (each is one paced edit).
THINKING_TICK = 3.0
# Free slots a channel needs for the placeholder to go out: itself and the first words after it.
FIRST_MESSAGE_ROOM = 2
# Shortest wait of the editor for a slot it expects (a float a hair short of the deadline).
_TICK = 0.01
# Consecutive failed edits after which the editor stops trying until the final edit.
_MAX_EDIT_FAILURES = 3


def connection_lost(exc: BaseException) -> bool:
    """What a request raises once the bot is closing: a dropped connection, or aiohttp's
    ``RuntimeError("Session is closed")`` when discord.py's HTTP session closed while the request
    waited its turn. Any other ``RuntimeError`` is a bug and is reported as one."""
    if isinstance(exc, aiohttp.ClientError):
        return True
    return isinstance(exc, RuntimeError) and "Session is closed" in str(exc)


class LiveReply:
    """One reply that grows with a stream of text. See the module docstring for the life cycle.

    ``wrap``: draw every chunk inside spoiler bars or a code block (see :class:`Wrap`).
    ``overflow``: a text longer than one message continues in further messages (``"continue"``),
    or stays within ``max_messages`` messages (``"attach"``): the last of them then shows a preview of
    the rest, and the whole text is attached to it as ``attachment_name``. ``min_interval``: the least
    time between two requests of this reply (default: the pacer's window over ``rate - 1``, so one
    reply alone edits evenly instead of in bursts and keeps one slot free for the final edit); the
    first edit with text ignores it, so the first words appear as soon as they arrive. ``registry``:
    where the reply's messages are registered so that their deletion stops it at once (the bot's
    ``bot.live``; None: a deletion is noticed on the next edit).
    ``stop``: the button shown while the reply streams. ``controls``: the buttons for a finished
    answer (given to :meth:`finish`). Without either, the sink is never asked for buttons.
    ``about``: the message the reply is about (registered under it, see the module docstring);
    ``on_posted``: awaited with the id of each message posted, before the next request.
    """

    placeholder_when_busy: ClassVar[bool] = False
    """True: post the placeholder even when the channel has no free slot (the behaviour before the
    first message learnt to wait for text; ``bench/latency.py`` measures both)."""

    def __init__(
        self,
        sink: ReplySink,
        pacer: ChannelPacer,
        *,
        wrap: Wrap | None = None,
        overflow: Literal["continue", "attach"] = "continue",
        max_messages: int = 1,
        attachment_name: str = "text.txt",
        placeholder: str = "…",
        limit: int = DISCORD_LIMIT,
        preview_chars: int = PREVIEW_CHARS,
        min_interval: float | None = None,
        registry: LiveRegistry | None = None,
        stop: Button | None = None,
        controls: Callable[[Completion], Sequence[Button]] | None = None,
        about: int | None = None,
        on_posted: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self._sink = sink
        self._stop_button = stop
        self._controls = controls
        self._with_buttons = stop is not None or controls is not None
        self._pacer = pacer
        self._layout: Layout | SealedLayout = Layout(
            wrap, overflow, attachment_name, placeholder, limit, preview_chars, max_messages
        )
        self._handover: Literal["due", "moved", "ended"] | None = None
        self._sealed = 0  # the first messages, final since the hand-over
        self._closing: Target | None = None  # what the messages show for good when the reply ended there
        self._accepting = True  # False once it ended there: the text is what the messages show
        # Live edits use all but one slot of the channel's window; the spare one lets the final edit
        # show the complete answer the moment it is done instead of a slot later.
        steady = pacer.window / max(pacer.rate - 1, 1)
        self._min_interval = steady if min_interval is None else min_interval
        self._parts: list[str] = []
        self._shown: list[str] = []  # what each message shows now, as last sent successfully
        self._shown_buttons: list[Buttons] = []
        self._text_shown = False
        self._complete = False  # the stream ended: live edits leave the rest to the final edit
        self._thinking_since: float | None = None
        self._registry = registry
        self._message_ids: list[int] = []  # those registered in the registry
        self._posted_ids: list[int] = []  # every message posted, in order
        self._attached = False
        self._started = False
        self._changed = asyncio.Event()
        self._deleted = asyncio.Event()
        self._stopped = asyncio.Event()
        self._editor: asyncio.Task[None] | None = None
        self._in_request = False
        self._stopping = False
        self._last_request_at = -math.inf
        self._requests = 0  # sends and edits made, for the registry's metrics
        self._reported = False
        self._on_posted = on_posted
        self._about = about
        self._idle = asyncio.Event()  # no request in flight
        self._idle.set()
        self._ended = asyncio.Event()
        if about is not None and registry is not None:
            if registry.is_gone(about):  # deleted while the caller was getting ready: show nothing
                self._deleted.set()
            else:
                registry.register_about(about, self)

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
    def channel_id(self) -> int:
        return self._sink.channel_id

    async def withdraw(self) -> list[int]:
        """What it is about was deleted: stop for good (the model request closes, nothing more is
        posted) and, once no request is in flight, return the ids of every message posted."""
        self._deleted.set()
        await self._idle.wait()
        return self.message_ids

    async def ended(self) -> None:
        """Until ``finish`` or ``fail`` is done, or ``stream`` raised :class:`ReplyDeleted`."""
        await self._ended.wait()

    def stop(self) -> None:
        """Someone clicked Stop: close the model request at once; ``stream`` raises :class:`ReplyStopped`
        and the caller finishes the reply with what was written. A no-op once the stream is over."""
        self._stopped.set()

    def thinking(self) -> None:
        """The model has begun to think: until its first visible word the placeholder says so."""
        if self._thinking_since is None:
            self._thinking_since = self._pacer.now()
            self._changed.set()

    @property
    def message_ids(self) -> list[int]:
        """The ids of the reply's messages, in order (those Discord told)."""
        return list(self._posted_ids)

    @property
    def messages(self) -> list[str]:
        """What the reply's messages show now (as far as we know)."""
        return list(self._shown)

    async def start(self) -> None:
        """Post the placeholder (through the pacer). Raises :class:`ReplyDeleted` if that is refused
        because the channel or interaction is gone; other Discord errors propagate.

        When the channel has no free slot, nothing is posted now: the typing indicator shows instead,
        and the first message waits for a slot to carry whatever text exists by then."""
        if self._started or self.deleted:
            return
        self._started = True
        channel_id = self._sink.channel_id
        if self._pacer.room(channel_id) < FIRST_MESSAGE_ROOM and not self.placeholder_when_busy:
            log.debug("live reply: channel %s is busy; the first message waits for text", channel_id)
            try:
                await self._sink.typing()
            except Exception as exc:  # the indicator is a courtesy: its failure changes nothing
                if not (isinstance(exc, discord.HTTPException) or connection_lost(exc)):
                    log.exception("live reply: the typing indicator failed")
            return
        try:
            await self._sync_all(self._waiting_target)
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
        except ReplyDeleted:
            self._release()  # the caller does nothing more with a deleted reply
            raise
        except BaseException:
            self._unregister()  # the caller may still ``fail``: that registers what it posts anew
            raise

    async def _stream(self, deltas: AsyncIterable[str]) -> str:
        iterator = aiter(deltas)
        try:
            await self.start()
            if self.deleted:  # while the caller was still preparing the request: send none
                raise ReplyDeleted("the reply was deleted before the stream began")
            if self._closing is not None:  # it ended at the hand-over: nobody would see more
                raise ReplyStopped(self.text)
        except BaseException:
            await _aclose(iterator, deltas)
            raise
        self._editor = asyncio.create_task(self._edit_loop(), name="live-reply-editor")
        if not self._shown:
            self._changed.set()  # the first message was held back: queue for its slot now
        consumer = asyncio.create_task(self._consume(iterator), name="live-reply-consumer")
        deleted = asyncio.create_task(self._deleted.wait())
        stopped = asyncio.create_task(self._stopped.wait())
        try:
            await asyncio.wait({consumer, deleted, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            deleted.cancel()
            stopped.cancel()
            if not consumer.done():
                consumer.cancel()
                await asyncio.wait({consumer})
            await _aclose(iterator, deltas)  # a no-op for a generator that ran to its end
            await self._halt_editor()
        if self.deleted:
            raise ReplyDeleted("the reply was deleted while streaming")
        if self._stopped.is_set() and consumer.cancelled():
            raise ReplyStopped(self.text)
        error = consumer.exception()
        if error is not None:
            raise error
        return self.text

    async def finish(
        self, note: str | None = None, *, empty_text: str = EMPTY_ANSWER, answer: Completion | None = None
    ) -> None:
        """Final edit(s): the messages show exactly ``split_message`` of the text (in the wrap), the
        optional ``note`` on a line of its own at the end; or the preview and the attachment.
        A blank text is shown as ``empty_text`` (plain, outside the wrap), the note under it.
        The last message carries the ``controls`` chosen for ``answer`` (none without one)."""
        try:
            await self._halt_editor()
            if not self.deleted:
                buttons = tuple(self._controls(answer)) if self._controls and answer else ()
                await self._settle(lambda: self._layout.final(self.text, note, empty_text, buttons))
        finally:
            self._done()

    async def fail(self, reason: str) -> None:
        """Keep the partial text and add ``⚠️ reason`` on a line of its own."""
        try:
            await self._halt_editor()
            if not self.deleted:
                await self._settle(lambda: self._layout.error(self.text, reason))
        finally:
            self._done()

    # -- targets ---------------------------------------------------------------------------

    def _streaming_buttons(self) -> Buttons:
        return (self._stop_button,) if self._stop_button is not None else ()

    def _waiting_target(self) -> Target:
        thinking = None if self._thinking_since is None else self._pacer.now() - self._thinking_since
        return self._layout.waiting(thinking, self._streaming_buttons())

    def _live_target(self) -> Target:
        if self._complete and self._shown:
            # The whole text is in: the final edit shows it with the final buttons, in one request.
            return Target(list(self._shown), buttons=self._shown_buttons[-1] if self._with_buttons else ())
        if not self.text.strip():
            return self._waiting_target()
        return self._layout.partial(self.text, None, self._streaming_buttons())

    # -- requests --------------------------------------------------------------------------

    def _next_index(self, target: Target) -> int | None:
        """The first message that differs from ``target`` (text or buttons, or lacks its attachment);
        never a sealed one."""
        for index, content in enumerate(target.contents):
            if index < self._sealed:
                continue
            if index >= len(self._shown) or self._shown[index] != content:
                return index
            if self._with_buttons and self._shown_buttons[index] != target.buttons_of(index):
                return index
        if target.file_text is not None and not self._attached:
            return len(target.contents) - 1
        return None

    async def _request(self, render: Callable[[], Target]) -> bool:
        """Take one slot and send the first change of the newest target; False if none was due.
        Hands over first when the sink's messages are about to freeze."""
        if self._handover_due():
            await self._hand_over()
        if self._closing is not None:
            closing = self._closing
            render = lambda: closing  # noqa: E731
        if self._next_index(render()) is None:
            return False
        try:
            async with self._pacer.slot(self._sink.channel_id):
                if self.deleted:  # withdrawn while it waited for the slot: post nothing more
                    raise ReplyDeleted("the reply was withdrawn")
                if self._handover_due():  # the wait for the slot crossed the moment: hand over first
                    return True
                target = render()  # the text may have grown while we waited for the slot
                index = self._next_index(target)
                if index is None:
                    return False
                self._in_request = True
                self._idle.clear()
                self._last_request_at = self._pacer.now()  # spacing counts from starts; the pacer
                # stamps completions, so a slow request still cannot crowd Discord's window
                posted = await self._perform(target, index)
                self._text_shown = self._text_shown or target.has_text
            if posted is not None and self._on_posted is not None:
                await self._on_posted(posted)  # outside the slot: the channel need not wait for the store
        finally:
            self._in_request = False  # the editor is not cancelled in a request (nor while it is noted)
            self._idle.set()
        return True

    async def _perform(self, target: Target, index: int) -> int | None:
        """Send or edit message ``index``; the id of a message it posted."""
        content = target.contents[index]
        self._requests += 1
        file = None
        if target.file_text is not None and index == len(target.contents) - 1:
            data = io.BytesIO(target.file_text.encode("utf-8"))
            file = discord.File(data, filename=self._layout.attachment_name)
        buttons = target.buttons_of(index)
        extra = {"buttons": buttons} if self._with_buttons else {}
        message_id: int | None = None
        try:
            if index < len(self._shown):
                await self._sink.edit(index, content, file=file, **extra)
                self._shown[index] = content
                self._shown_buttons[index] = buttons
            else:
                message_id = await self._sink.send(content, file=file, **extra)
                self._shown.append(content)
                self._shown_buttons.append(buttons)
                if message_id is not None:
                    self._posted_ids.append(message_id)
                if message_id is not None and self._registry is not None:
                    self._message_ids.append(message_id)
                    self._registry.register(message_id, self)
        except discord.NotFound as exc:
            raise ReplyDeleted(str(exc)) from exc
        if file is not None:
            self._attached = True
        log.debug("live reply: message %d now %d chars", index, len(content))
        return message_id

    async def _sync_all(self, render: Callable[[], Target]) -> None:
        while await self._request(render):
            pass

    # -- the hand-over ---------------------------------------------------------------------

    def _handover_due(self) -> bool:
        return self._handover is None and self._sink.handover_in() <= 0

    async def _hand_over(self) -> None:
        """The sink's messages are about to freeze: seal them and go on in new ones, or end here."""
        self._handover = "due"
        reason = self._sink.hand_over()
        if reason is None:
            if self._shown:
                layout = self._layout.seal(self.text, len(self._shown), complete=self._complete)
                sealed = Target(list(layout.sealed))
                await self._settle_quietly(lambda: sealed)
                self._layout, self._sealed = layout, len(layout.sealed)
            self._handover = "moved"
            return
        self._accepting = False  # what arrives from now on would never be shown
        closing = self._layout.error(self.text, reason)
        await self._settle_quietly(lambda: closing)
        self._closing, self._handover = closing, "ended"
        self._stopped.set()  # the stream ends: its text could not be shown

    async def _settle_quietly(self, render: Callable[[], Target]) -> None:
        """Bring the messages to ``render()`` if Discord lets us; a refusal is only logged."""
        try:
            await self._sync_all(render)
        except discord.HTTPException as exc:
            log.warning("live reply: an edit at the hand-over was refused (%s %s)", exc.status, exc.text)

    async def _settle(self, render: Callable[[], Target]) -> None:
        """Bring the messages to ``render()``; on failure log and add an error line if possible."""
        try:
            await self._sync_all(render)
        except ReplyDeleted:
            self._deleted.set()
            log.info("live reply deleted before its final edit")
        except discord.HTTPException as exc:
            log.warning("live reply: final edit refused (%s %s)", exc.status, exc.text)
            if not self._shown:
                return
            line = f"{WARNING} Discord refused to show the rest of this answer."
            fallback = self._layout.with_line(self._shown, line, render().buttons)
            try:
                await self._sync_all(lambda: fallback)
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

    def _done(self) -> None:
        """``finish`` or ``fail`` is over."""
        self._report_finished()
        self._release()

    def _release(self) -> None:
        """Nothing of the reply is live any more."""
        self._unregister()
        if self._about is not None and self._registry is not None:
            self._registry.unregister_about(self._about, self)
        self._ended.set()

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
            if delta and self._accepting:
                self._parts.append(delta)
                self._changed.set()
        self._complete = True

    async def _edit_loop(self) -> None:
        failures = 0
        while not self._stopping:
            await self._next_change()
            if self._holding_first_message() and not self._handover_due():
                continue
            wait = self._last_request_at + self._min_interval - self._pacer.now()
            if self._handover is None:  # the hand-over does not wait for the spacing of live edits
                wait = min(wait, self._sink.handover_in())
            first_words = not self._text_shown and bool(self.text.strip())
            if wait > 0 and not first_words:  # the first words go out at once
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

    async def _next_change(self) -> None:
        """Until the text changes, or the "Thinking... 12s" placeholder should tick, or a held first
        message may go."""
        timeouts = []
        if self._thinking_since is not None and not self.text.strip():
            timeouts.append(THINKING_TICK)
        if self._holding_first_message() and not self._complete:
            timeouts.append(self._pacer.until_room(self._sink.channel_id, FIRST_MESSAGE_ROOM))
        if self._handover is None:
            timeouts.append(self._sink.handover_in())
        timeout = min(timeouts, default=math.inf)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), None if timeout == math.inf else max(timeout, _TICK))
        self._changed.clear()

    def _holding_first_message(self) -> bool:
        """In a busy channel the first message waits: spent on part of the answer, the channel's last
        slot would leave the rest waiting for the window to roll. It goes once the answer is complete
        (then :meth:`finish` sends it, final buttons and all) or the channel has room for more."""
        if self._shown or self.placeholder_when_busy:
            return False
        return self._complete or self._pacer.room(self._sink.channel_id) < FIRST_MESSAGE_ROOM

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
