"""Where a live reply's messages go: a reply in a channel, or an interaction's response and followups
(and, once the interaction's token is about to end, ordinary messages in its channel).

Every send and edit here goes out with mentions disabled: the text is the model's, and untrusted.
A message's buttons (:class:`~bot.replies.controls.Button`) go out as a view that discord.py does not
keep: clicks are dispatched by the dynamic items the cogs register, which read all they need from the
custom ID, so they work after a restart.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import aiohttp
import discord

from bot.replies.controls import Button
from bot.replies.deadline import DEFAULT_MARGIN, TokenDeadline
from bot.vlm import ReplyDeleted

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()


def missing_reply_permissions(channel: object) -> tuple[str, ...]:
    """The permissions the bot lacks to reply in ``channel``, judged from its cached permissions
    (DMs: none). A reply needs Read Message History besides Send Messages: Discord answers 160002
    without it.

    Checked before work that would end in a message nobody can see: a 403 costs nothing to avoid,
    and Discord bans clients that pile up invalid (401/403/429) requests.
    """
    guild = getattr(channel, "guild", None)
    if guild is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
        return ()
    permissions = channel.permissions_for(guild.me)
    if not permissions.view_channel:
        return ("View Channel",)
    in_thread = isinstance(channel, discord.Thread)
    needed = (
        ("Send Messages in Threads" if in_thread else "Send Messages",
         permissions.send_messages_in_threads if in_thread else permissions.send_messages),
        ("Read Message History", permissions.read_message_history),
    )  # fmt: skip
    return tuple(name for name, granted in needed if not granted)


def can_post_in(channel: object) -> bool:
    """Whether the bot may reply in ``channel`` (see :func:`missing_reply_permissions`)."""
    return not missing_reply_permissions(channel)


class OncePerChannel:
    """What was already said about a channel, so a flood of messages there logs one line, not one each."""

    def __init__(self) -> None:
        self._said: set[tuple[int, tuple[str, ...]]] = set()

    def first(self, channel_id: int, missing: tuple[str, ...]) -> bool:
        """True the first time ``missing`` is reported for ``channel_id`` (again if it changes)."""
        key = (channel_id, missing)
        if key in self._said:
            return False
        self._said.add(key)
        return True


class ReplySink(Protocol):
    """Where a live reply's messages go; message ``index`` 0 is the first (the placeholder)."""

    @property
    def channel_id(self) -> int: ...

    async def send(
        self, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> int | None:
        """Post the next message of the reply; return its id (None if Discord did not say)."""
        ...

    async def edit(
        self, index: int, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> None:
        """Replace the content and buttons of message ``index`` (and add ``file`` to it)."""
        ...

    async def typing(self) -> None:
        """Show that an answer is coming while its first message waits for a slot."""
        ...

    def handover_in(self) -> float:
        """Seconds until the messages sent so far can no longer be edited (``math.inf``: never), at
        which point the reply calls :meth:`hand_over`."""
        ...

    def hand_over(self) -> str | None:
        """From now on, send new messages where they can be edited for as long as the reply needs;
        None, or why that cannot be (the reply then ends at once, saying so)."""
        ...


class LastingSink:
    """The :class:`ReplySink` part of a sink whose messages can be edited as long as they exist."""

    def handover_in(self) -> float:
        return math.inf

    def hand_over(self) -> str | None:
        return None


_STYLES = {
    "primary": discord.ButtonStyle.primary,
    "secondary": discord.ButtonStyle.secondary,
    "success": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
}


def button_view(buttons: Sequence[Button]) -> discord.ui.View | None:
    """The buttons as a view, or None (which clears a message's buttons on an edit).

    The view is stopped at once, so discord.py does not keep it in its view store (one per message,
    forever): the cogs' dynamic items handle the clicks."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(discord.ui.Button(label=button.label, custom_id=button.custom_id, style=_STYLES[button.style]))
    view.stop()
    return view


async def reply_briefly(message: discord.Message, line: str) -> None:
    """Answer a member's ``message`` with one short line (why it is not answered), pinging no one,
    its author included; a refusal from Discord is logged, not raised."""
    try:
        await message.reply(line, mention_author=False, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        log.warning("Could not answer message %s of user %s with a notice", message.id, message.author.id,
                    exc_info=True)


async def _post(
    channel: Any,
    content: str,
    previous: discord.Message | discord.PartialMessage | None,
    file: discord.File | None,
    buttons: Sequence[Button] | None,
) -> discord.Message:
    """Send ``content`` into ``channel`` as a reply to ``previous`` (None: a plain message); it still
    posts if ``previous`` was deleted meanwhile."""
    return await channel.send(
        content,
        reference=previous.to_reference(fail_if_not_exists=False) if previous else None,  # type: ignore[arg-type]
        mention_author=False,
        allowed_mentions=NO_MENTIONS,
        **_extras(file, buttons, editing=False),
    )


def _extras(file: discord.File | None, buttons: Sequence[Button] | None, *, editing: bool) -> dict[str, Any]:
    """discord.py takes ``file=`` on sends and ``attachments=`` on edits, and rejects ``None`` for
    both; ``view=None`` clears the buttons on an edit (``buttons=None``: leave them as they are)."""
    extras: dict[str, Any] = {}
    if file is not None:
        extras |= {"attachments": [file]} if editing else {"file": file}
    if buttons is not None and (editing or buttons):
        extras["view"] = button_view(buttons)
    return extras


class MessageSink(LastingSink):
    """Replies to a :class:`discord.Message`; each continuation replies to the previous chunk.

    ``into``: answer in that channel instead (a thread opened from the message), where the first
    message cannot reply to one outside it.
    """

    def __init__(self, message: discord.Message, *, into: discord.abc.Messageable | None = None) -> None:
        self._origin = message
        self._channel = into or message.channel
        self._messages: list[discord.Message] = []
        self.channel_id = getattr(self._channel, "id", message.channel.id)

    async def send(
        self, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> int | None:
        previous = self._messages[-1] if self._messages else self._origin
        here = previous.channel.id == self.channel_id
        sent = await _post(self._channel, content, previous if here else None, file, buttons)
        self._messages.append(sent)
        return sent.id

    async def edit(
        self, index: int, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> None:
        message = self._messages[index]
        self._messages[index] = await message.edit(
            content=content, allowed_mentions=NO_MENTIONS, **_extras(file, buttons, editing=True)
        )

    async def typing(self) -> None:
        await self._channel.typing()


PRIVATE_ENDS = (
    "Discord lets me edit a private reply for 15 minutes only, so the text ends here. "
    "Fewer images at a time take less time."
)
CANNOT_POST = (
    "Discord lets me edit a command's reply for 15 minutes only, and to carry on in this channel I need "
    "{missing}, so the text ends here."
)


class InteractionSink:
    """Answers a deferred interaction: message 0 is the original response (the "thinking" message
    ``interaction.response.defer(thinking=True)`` posted), the rest are followups.

    Every command defers before it builds one, within the 3 s Discord allows for the first response.

    The interaction's token ends 15 minutes after the interaction was created (``deadline``); a
    reply then moves on (:meth:`hand_over`): later messages are ordinary messages in the channel,
    each a reply to the message before it, without mentions, and those stay editable. A ``private``
    (ephemeral) reply cannot move (that would publish it; the response's own flags tell, too), nor one
    where the bot may not post: then
    :meth:`hand_over` says why, and the reply ends through the token while it still works. No request
    is ever made with a token that has expired.
    """

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        private: bool = False,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._interaction = interaction
        self._private = private
        self._deadline = TokenDeadline(interaction.created_at.timestamp(), margin, clock=clock)
        self._messages: list[Any] = []  # index -> the message (the token's first, then the channel's)
        self._through_token = 0  # how many of them went through the token
        self._moved: bool | None = None  # None: not handed over yet; False: could not be
        self._why_not: str | None = None
        # Interaction routes are webhook routes; pacing them with the channel is simply conservative.
        self.channel_id = interaction.channel_id or 0

    def handover_in(self) -> float:
        return self._deadline.handover_in()

    def hand_over(self) -> str | None:
        if self._moved is None:
            channel = self._interaction.channel
            missing = () if self._private else missing_reply_permissions(channel) if channel else ("View Channel",)
            if self._private:
                self._why_not = PRIVATE_ENDS
            elif missing:
                self._why_not = CANNOT_POST.format(missing=" and ".join(missing))
            self._moved = self._why_not is None
            outcome = "continues in channel messages" if self._moved else f"ends ({missing or 'private'})"
            log.info("Interaction %s: its token ends soon; the reply %s", self._interaction.id, outcome)
        return self._why_not

    def _check_token(self) -> None:
        if self._deadline.expired():  # the reply should have moved on: never send a refused request
            log.warning("Interaction %s: its token has expired; the reply stops", self._interaction.id)
            raise ReplyDeleted("the interaction's token has expired")

    async def send(
        self, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> int | None:
        interaction = self._interaction
        if self._moved:
            previous = self._messages[-1] if self._messages else None
            message = await _post(interaction.channel, content, previous, file, buttons)
        else:
            self._check_token()
            if not self._messages:  # the "thinking" message becomes the first one
                message = await interaction.edit_original_response(
                    content=content, allowed_mentions=NO_MENTIONS, **_extras(file, buttons, editing=True)
                )
                # A response deferred as ephemeral is private whatever the caller said: it never moves.
                self._private = self._private or bool(getattr(getattr(message, "flags", None), "ephemeral", False))
            else:
                message = await interaction.followup.send(
                    content, wait=True, allowed_mentions=NO_MENTIONS, **_extras(file, buttons, editing=False)
                )
            self._through_token += 1
        self._messages.append(message)
        return message.id  # type: ignore[no-any-return]

    async def edit(
        self, index: int, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> None:
        kwargs = {"content": content, "allowed_mentions": NO_MENTIONS, **_extras(file, buttons, editing=True)}
        if index < self._through_token:
            self._check_token()
        if index == 0:
            await self._interaction.edit_original_response(**kwargs)
        else:
            self._messages[index] = await self._messages[index].edit(**kwargs)

    async def typing(self) -> None:
        """A deferred interaction shows "Glimpse is thinking..." until the first message; once moved
        on, the channel's typing indicator shows instead."""
        if self._moved:
            await self._interaction.channel.typing()  # type: ignore[union-attr]


class AnswerMessagesSink(LastingSink):
    """The messages of an answer asked for again: message ``index`` is the answer's old message of that
    index while there is one (edited in place), else a new message replying to the one before.

    With no old messages (``message_ids`` empty), the first message replies to ``after``: the next
    part of an answer that was continued. :meth:`unused` tells which old messages the new answer did
    not need (the caller deletes them once the reply is done).
    """

    def __init__(
        self, channel: discord.abc.Messageable, message_ids: Sequence[int], *, after: int | None = None
    ) -> None:
        self._channel = channel
        self._old = list(message_ids)
        self._after = after
        self._messages: list[discord.Message] = []
        self.channel_id: int = getattr(channel, "id", 0)

    def unused(self) -> list[int]:
        return self._old[len(self._messages) :]

    def _partial(self, message_id: int) -> discord.PartialMessage:
        return self._channel.get_partial_message(message_id)  # type: ignore[attr-defined,no-any-return]

    async def send(
        self, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> int | None:
        index = len(self._messages)
        if index < len(self._old):
            message = await self._partial(self._old[index]).edit(
                content=content, allowed_mentions=NO_MENTIONS, **_extras(file, buttons, editing=True)
            )
        else:
            previous: discord.Message | discord.PartialMessage | None = (
                self._messages[-1] if self._messages else None if self._after is None else self._partial(self._after)
            )
            message = await _post(self._channel, content, previous, file, buttons)
        self._messages.append(message)
        return message.id

    async def edit(
        self, index: int, content: str, *, file: discord.File | None = None, buttons: Sequence[Button] | None = None
    ) -> None:
        self._messages[index] = await self._messages[index].edit(
            content=content, allowed_mentions=NO_MENTIONS, **_extras(file, buttons, editing=True)
        )

    async def typing(self) -> None:
        await self._channel.typing()


def message_deleter(channel: Callable[[int], Any]) -> Callable[[int, int], Awaitable[None]]:
    """Deletes one of the bot's messages by (channel id, message id); ``channel``: a channel by id (the
    bot's ``get_partial_messageable``). Never raises: a message already gone is fine, a refusal logged."""

    async def delete(channel_id: int, message_id: int) -> None:
        try:
            await channel(channel_id).get_partial_message(message_id).delete()
        except discord.NotFound:
            log.debug("Message %s was deleted already", message_id)
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.warning("Could not delete message %s in channel %s (%r)", message_id, channel_id, exc)

    return delete
