"""Channel conversations end to end: the real bot, the Discord emulator and the VLM server.

Every assertion is on what the fakes recorded: the requests the VLM server received (which turns,
which names, which images) and the messages and interaction responses the emulator saw.

The helpers at the top are shared with the other memory test modules (``test_memory_*.py``,
``test_restart.py``).
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from bot.app import Glimpse
from bot.conversation import ChatService
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_bot_pinged_nobody,
    emulator_config,
    paced_like_emulator,
)
from tests.fakes.discord import Channel, CommandUnavailable, DiscordEmulator, Message, User
from tests.fakes.discord.gateway import GUILD_MESSAGES
from tests.fakes.vlm import RecordedRequest, Script, VLMServer, image_bytes

# ---- helpers ---------------------------------------------------------------------------------------

RED = ("red.png", image_bytes(320, 240, color="red"))
BLUE = ("blue.png", image_bytes(240, 320, color="blue"))
GREEN = ("green.png", image_bytes(280, 200, color="green"))
SIZE = {RED: (320, 240), BLUE: (240, 320), GREEN: (280, 200)}


@dataclass(frozen=True)
class SentMessage:
    """One message of a recorded ``/chat/completions`` request: role, text, and its images' sizes."""

    role: str
    text: str
    images: tuple[tuple[int, int], ...]


def sent_messages(request: RecordedRequest) -> list[SentMessage]:
    """The request's messages as the VLM server received them, images decoded to (width, height)."""
    result = []
    for message in request.body["messages"]:
        content = message["content"]
        parts: list[dict[str, Any]] = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts = [part["text"] for part in parts if part["type"] == "text"]
        sizes = tuple(_image_size(part["image_url"]["url"]) for part in parts if part["type"] == "image_url")
        result.append(SentMessage(message["role"], "\n".join(texts), sizes))
    return result


def _image_size(url: str) -> tuple[int, int]:
    _, _, payload = url.partition(";base64,")
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        return image.size


def request_text(request: RecordedRequest) -> str:
    """Every text of the request (system prompt included), joined."""
    return "\n".join(message.text for message in sent_messages(request))


def history_of(request: RecordedRequest) -> list[SentMessage]:
    """The request without its system prompt."""
    messages = sent_messages(request)
    assert messages[0].role == "system"
    return messages[1:]


class StoredExchanges:
    """Counts exchanges the chat service finished storing, so a test can wait for one to be stored.

    A live edit can show the whole answer before the exchange is stored (the store write comes just
    before the *final* edit), so "the answer is on screen" does not yet mean "the next question will
    see it". Wrapping ``ChatService.remember`` (and calling through) is the one observation point that
    covers both chat answers and descriptions.
    """

    def __init__(self, chat: ChatService) -> None:
        self.count = 0
        self._changed = asyncio.Condition()
        original = chat.remember

        async def remember(*args: Any, **kwargs: Any) -> None:
            try:
                await original(*args, **kwargs)
            finally:
                async with self._changed:
                    self.count += 1
                    self._changed.notify_all()

        chat.remember = remember  # type: ignore[method-assign]

    async def wait(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.count >= count)


@dataclass
class Talk:
    """People talking to the bot, one exchange at a time (each waits until its exchange is stored)."""

    emulator: DiscordEmulator
    vlm: VLMServer
    stored: StoredExchanges

    @classmethod
    def watching(cls, glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> Talk:
        return cls(emulator, vlm, StoredExchanges(glimpse.chat))

    def mention(self, text: str) -> str:
        return f"<@{self.emulator.bot_user.id}> {text}"

    async def say(
        self,
        author: User,
        channel: Channel,
        content: str,
        *,
        answer: str | None = None,
        attachments: Sequence[tuple[str, bytes]] = (),
        reply_to: Message | None = None,
        mention_author: bool = True,
    ) -> tuple[Message, RecordedRequest]:
        """Post ``content`` (the bot answers with ``answer``); return the bot's reply and the request."""
        requests, stored = len(self.vlm.completions), self.stored.count
        if answer is not None:
            self.vlm.script(answer)
        posted = await self.emulator.post_message(
            author, channel, content, attachments=attachments, reply_to=reply_to, mention_author=mention_author
        )
        reply = await self.emulator.wait_for_message(channel, after=posted)
        await self.vlm.wait_for_requests(requests + 1)
        await self.stored.wait(stored + 1)
        if answer is not None:  # the exchange is stored first, then the final edit shows it complete
            await self.emulator.wait_for_content(reply, lambda text: answer in text)
        return reply, self.vlm.completions[requests]

    async def ask(self, author: User, channel: Channel, text: str, **kwargs: Any) -> tuple[Message, RecordedRequest]:
        """``author`` mentions the bot with ``text``."""
        return await self.say(author, channel, self.mention(text), **kwargs)

    async def command(self, user: User, channel: Channel, name: str, options: dict[str, Any] | None = None) -> str:
        """Run a slash command; return its (ephemeral) text, once there is one (commands that read
        the store defer first, then edit their answer in or send it as a followup)."""
        interaction = await self.emulator.run_slash_command(user, channel, name, options)
        await self.emulator.wait_for_response(interaction)
        assert interaction.ephemeral, f"/{name} must answer ephemerally"
        return await self.emulator.wait_for(
            lambda: (interaction.original and interaction.original.content)
            or (interaction.followups and interaction.followups[0].content)
        )


@pytest.fixture
def talk(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> Talk:
    return Talk.watching(glimpse, emulator, vlm)


# ---- conversation ----------------------------------------------------------------------------------


async def test_third_request_carries_the_earlier_turns_names_answers_and_both_images(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    alice, bob, carol = emulator.user("alice"), emulator.user("bob"), emulator.user("carol")
    general = emulator.channel("general")

    _, first = await talk.ask(
        alice, general, "what is this?", attachments=[RED], answer="A red rectangle, wider than tall."
    )
    assert [m.images for m in history_of(first)] == [(SIZE[RED],)]
    second_reply, second = await talk.ask(
        bob, general, "and this one?", attachments=[BLUE], answer="A blue one, taller than wide."
    )
    # carol replies to the bot's answer without mentioning it: that continues the conversation too
    reply, third = await talk.say(
        carol,
        general,
        "what colour is the car in the first picture?",
        reply_to=second_reply,
        mention_author=False,
        answer="There is no car; the first picture is plain red.",
    )

    assert len(talk.vlm.completions) == 3
    assert [(m.role, m.text, m.images) for m in history_of(third)] == [
        ("user", "alice: what is this?", (SIZE[RED],)),
        ("assistant", "A red rectangle, wider than tall.", ()),
        ("user", "bob: and this one?", (SIZE[BLUE],)),
        ("assistant", "A blue one, taller than wide.", ()),
        ("user", "carol: what colour is the car in the first picture?", ()),
    ]
    assert second.images and len(second.images) == 2  # the red one from memory, the blue one attached
    assert reply.reference_id is not None
    assert "There is no car" in reply.content
    assert_bot_pinged_nobody(emulator)


async def test_a_thread_and_its_parent_channel_keep_separate_memories(talk: Talk, emulator: DiscordEmulator) -> None:
    alice, bob = emulator.user("alice"), emulator.user("bob")
    general, thread = emulator.channel("general"), emulator.channel("general-thread")

    await talk.ask(alice, general, "the codeword in here is PELICAN", answer="Noted: PELICAN.")
    await talk.ask(bob, thread, "the codeword in this thread is WALRUS", answer="Noted: WALRUS.")
    _, in_thread = await talk.ask(bob, thread, "what is the codeword?", answer="WALRUS.")
    _, in_general = await talk.ask(alice, general, "what is the codeword?", answer="PELICAN.")

    assert "WALRUS" in request_text(in_thread) and "PELICAN" not in request_text(in_thread)
    assert "PELICAN" in request_text(in_general) and "WALRUS" not in request_text(in_general)
    assert [m.text for m in history_of(in_general)] == [
        "alice: the codeword in here is PELICAN",
        "Noted: PELICAN.",
        "alice: what is the codeword?",
    ]
    assert_bot_pinged_nobody(emulator)


async def test_the_bot_answers_any_dm_and_remembers_the_dm(talk: Talk, emulator: DiscordEmulator) -> None:
    bob = emulator.user("bob")
    general, dm = emulator.channel("general"), emulator.dm(emulator.user("bob"))
    await talk.ask(bob, general, "in public: my favourite colour is GREEN", answer="Nice.")

    reply, first = await talk.say(bob, dm, "psst, what is this?", attachments=[BLUE], answer="A blue rectangle.")
    _, second = await talk.say(bob, dm, "and its colour again?", answer="Blue.")

    assert reply.channel_id == dm.id and "A blue rectangle." in reply.content
    assert [(m.text, m.images) for m in history_of(first)] == [("bob: psst, what is this?", (SIZE[BLUE],))]
    assert [(m.text, m.images) for m in history_of(second)] == [
        ("bob: psst, what is this?", (SIZE[BLUE],)),
        ("A blue rectangle.", ()),
        ("bob: and its colour again?", ()),
    ]
    assert "GREEN" not in request_text(second)
    assert_bot_pinged_nobody(emulator)


async def test_ask_command_continues_the_channel_conversation(talk: Talk, emulator: DiscordEmulator) -> None:
    alice, carol, general = emulator.user("alice"), emulator.user("carol"), emulator.channel("general")
    await talk.ask(alice, general, "what is this?", attachments=[RED], answer="A red rectangle.")

    talk.vlm.script("Green, and the earlier one was red.")
    interaction = await emulator.run_slash_command(carol, general, "ask", {"prompt": "and this?", "image": GREEN})
    await talk.stored.wait(2)

    [_, request] = talk.vlm.completions
    assert [(m.text, m.images) for m in history_of(request)] == [
        ("alice: what is this?", (SIZE[RED],)),
        ("A red rectangle.", ()),
        ("carol: and this?", (SIZE[GREEN],)),
    ]
    assert not interaction.ephemeral and interaction.original is not None
    await emulator.wait_for_content(interaction.original, lambda text: "Green, and the earlier one was red." in text)
    assert_bot_pinged_nobody(emulator)


# ---- "the image above" -----------------------------------------------------------------------------


async def test_a_question_without_an_image_looks_at_the_image_posted_above(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    bob, carol, general = emulator.user("bob"), emulator.user("carol"), emulator.channel("general")
    await emulator.post_message(bob, general, "look at my new wallpaper", attachments=[GREEN])

    reply, request = await talk.ask(carol, general, "what colour is the picture above?", answer="Green.")

    [question] = history_of(request)
    assert (question.text, question.images) == ("carol: what colour is the picture above?", (SIZE[GREEN],))
    await emulator.wait_for_content(reply, lambda text: "bob posted above" in text)  # whose image it looked at
    assert_bot_pinged_nobody(emulator)


async def test_the_image_above_is_the_newest_one_even_when_memory_holds_an_older_image(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    alice, bob, carol = emulator.user("alice"), emulator.user("bob"), emulator.user("carol")
    general = emulator.channel("general")
    await talk.ask(alice, general, "what is this?", attachments=[RED], answer="A red rectangle.")
    await emulator.post_message(bob, general, "and here is mine", attachments=[GREEN])

    _, request = await talk.ask(carol, general, "what colour is the picture above?", answer="Green.")

    sent = history_of(request)
    assert sent[-1].text == "carol: what colour is the picture above?"
    assert SIZE[GREEN] in [size for message in sent for size in message.images], "bob's newer image was not sent"
    assert_bot_pinged_nobody(emulator)


# ---- descriptions become turns ---------------------------------------------------------------------


async def test_a_follow_up_on_an_auto_described_image_sees_the_image_and_its_description(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    bob, carol, images = emulator.user("bob"), emulator.user("carol"), emulator.channel("images")
    description = "A plain green rectangle on its own."
    talk.vlm.script(description)
    posted = await emulator.post_message(bob, images, "my wallpaper", attachments=[GREEN])
    described = await emulator.wait_for_message(images, after=posted)
    await talk.stored.wait(1)
    await emulator.wait_for_content(described, lambda text: description in text)

    _, follow_up = await talk.ask(carol, images, "is there anything written on it?", answer="No text at all.")

    assert len(talk.vlm.completions) == 2
    assert [(m.role, m.text, m.images) for m in history_of(follow_up)] == [
        ("user", "bob: my wallpaper", (SIZE[GREEN],)),
        ("assistant", description, ()),
        ("user", "carol: is there anything written on it?", ()),
    ]
    assert_bot_pinged_nobody(emulator)


# ---- /forget and /context --------------------------------------------------------------------------


async def test_forget_needs_manage_messages_and_then_the_old_turns_are_gone(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    await talk.ask(bob, general, "the codeword is PELICAN; what is this?", attachments=[RED], answer="A red rectangle.")

    context = await talk.command(bob, general, "context")
    assert "use 2 remembered messages with 1 image " in context

    with pytest.raises(CommandUnavailable):  # Discord does not offer /forget to bob...
        await talk.command(bob, general, "forget")
    emulator.set_command_permission("forget", bob, True)  # ...until an admin lets him; the bot still refuses
    refused = await talk.command(bob, general, "forget")
    assert "Manage Messages" in refused
    _, kept = await talk.ask(bob, general, "what was the codeword?", answer="PELICAN.")
    assert "PELICAN" in request_text(kept)
    assert "4 remembered messages with 1 image " in await talk.command(bob, general, "context")

    done = await talk.command(alice, general, "forget")
    assert "forgot" in done and "4 stored messages" in done
    assert "remember nothing" in await talk.command(bob, general, "context")

    _, after = await talk.ask(
        alice, general, "what was the codeword, and what did bob show you?", answer="I don't know."
    )
    assert [(m.text, m.images) for m in history_of(after)] == [
        ("alice: what was the codeword, and what did bob show you?", ()),
    ], "after /forget the request must hold neither the old turns nor the old image"
    assert_bot_pinged_nobody(emulator)


async def test_forget_in_a_dm_is_allowed_for_anyone(talk: Talk, emulator: DiscordEmulator) -> None:
    bob = emulator.user("bob")
    dm = emulator.dm(bob)
    await talk.say(bob, dm, "my codeword is PELICAN", answer="Noted.")

    assert "forgot" in await talk.command(bob, dm, "forget")
    _, after = await talk.say(bob, dm, "what is my codeword?", answer="I don't know.")
    assert "PELICAN" not in request_text(after)


async def test_an_answer_still_streaming_during_forget_is_not_remembered(
    talk: Talk, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, general = emulator.user("alice"), emulator.channel("general")
    answer = "The codeword is PELICAN, noted."
    vlm.script(Script(text=answer, chunk_size=8, gated=True))
    asked = await emulator.post_message(alice, general, talk.mention("remember the codeword PELICAN"))
    reply = await emulator.wait_for_message(general, after=asked)
    await vlm.wait_for_requests(1)

    assert "forgot" in await talk.command(alice, general, "forget")  # while the answer streams
    await vlm.release(len(answer))
    await emulator.wait_for_content(reply, lambda text: answer in text)

    _, after = await talk.ask(alice, general, "what was the codeword?", answer="I don't know.")
    assert "PELICAN" not in request_text(after), "an exchange answered before /forget must stay forgotten"
    assert_bot_pinged_nobody(emulator)


# ---- failures and redelivery -----------------------------------------------------------------------

FAILING_500 = Script.error(500, retry_after=0)
"""A 500 the vision client retries at once (``retry_after=0``): four of them exhaust its retries."""


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param((FAILING_500,) * 4, id="500-before-any-text"),
        pytest.param((Script(text="The picture shows a lovely", disconnect_after=2),), id="dropped-mid-stream"),
    ],
)
async def test_a_failed_answer_stores_nothing(
    talk: Talk, emulator: DiscordEmulator, failure: tuple[Script, ...]
) -> None:
    alice, general = emulator.user("alice"), emulator.channel("general")
    await talk.ask(alice, general, "first question", answer="First answer.")

    talk.vlm.script(*failure)
    requests = len(talk.vlm.completions)
    posted = await emulator.post_message(alice, general, talk.mention("the codeword is FLAMINGO"))
    reply = await emulator.wait_for_message(general, after=posted)
    await emulator.wait_for_content(reply, lambda text: "⚠️" in text)
    assert len(talk.vlm.completions) == requests + len(failure)

    _, next_request = await talk.ask(alice, general, "what was the codeword?", answer="You did not say.")
    assert "FLAMINGO" not in request_text(next_request)
    assert [m.text for m in history_of(next_request)] == [
        "alice: first question",
        "First answer.",
        "alice: what was the codeword?",
    ]
    assert "4 remembered messages" in await talk.command(alice, general, "context")


async def test_a_redelivered_message_is_answered_once_and_stored_once(talk: Talk, emulator: DiscordEmulator) -> None:
    alice, general = emulator.user("alice"), emulator.channel("general")
    await talk.ask(alice, general, "what is this?", attachments=[RED], answer="A red rectangle.")
    [posted] = [m for m in emulator.messages_in(general, author=alice)]

    # Discord may deliver an event twice (e.g. around a resume): the very same MESSAGE_CREATE again
    await emulator.gateway.dispatch(
        "MESSAGE_CREATE", emulator.messages.payload(posted), guild_id=general.guild_id, intent=GUILD_MESSAGES
    )
    await emulator.force_reconnect()  # a resume in between, as when Discord replays
    [session] = emulator.gateway.connected_sessions
    await emulator.wait_for(lambda: session.resumes == 1 and session.connected, what="resumed")
    _, later = await talk.ask(alice, general, "and now?", answer="Still red.")

    assert len(talk.vlm.completions) == 2
    assert len(emulator.bot_messages(general)) == 2
    assert [m.text for m in history_of(later)] == [
        "alice: what is this?",
        "A red rectangle.",
        "alice: and now?",
    ]
    assert "4 remembered messages with 1 image " in await talk.command(alice, general, "context")
    assert_bot_pinged_nobody(emulator)


async def test_a_mention_replying_to_someones_image_asks_about_that_image(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    bob, carol, general = emulator.user("bob"), emulator.user("carol"), emulator.channel("general")
    await talk.ask(carol, general, "what is this?", attachments=[RED], answer="A red rectangle.")
    shared = await emulator.post_message(bob, general, "my wallpaper", attachments=[BLUE])
    await emulator.post_message(bob, general, "and a second one", attachments=[GREEN])

    _, request = await talk.ask(carol, general, "what colour is it?", reply_to=shared, answer="Blue.")

    assert [(m.text, m.images) for m in history_of(request)] == [
        ("carol: what is this?", (SIZE[RED],)),
        ("A red rectangle.", ()),
        ("carol: what colour is it?", (SIZE[BLUE],)),  # the replied-to image, not the newer green one
    ]


async def test_a_follow_up_about_a_spoiler_image_stays_behind_spoiler_bars(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    hidden = ("SPOILER_ending.png", RED[1])
    first, _ = await talk.ask(bob, general, "what happens here?", attachments=[hidden], answer="The hero wins.")
    assert first.content.startswith("||")

    follow_up, request = await talk.ask(bob, general, "and who loses?", answer="The villain loses.")

    assert history_of(request)[0].images == (SIZE[RED],)  # the spoiler image went again
    assert follow_up.content.startswith("||") and "The villain loses." in follow_up.content

    # once the spoiler is forgotten, answers are in the clear again
    assert "forgot" in await talk.command(alice, general, "forget")
    clear, _ = await talk.ask(bob, general, "what is 2 + 2?", answer="Four.")
    assert clear.content.startswith("Four.")
    assert_bot_pinged_nobody(emulator)


async def test_a_follow_up_about_an_auto_described_spoiler_image_stays_behind_spoiler_bars(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    bob, carol, images = emulator.user("bob"), emulator.user("carol"), emulator.channel("images")
    talk.vlm.script("A plain green rectangle.")
    posted = await emulator.post_message(bob, images, "no peeking", attachments=[("SPOILER_wall.png", GREEN[1])])
    described = await emulator.wait_for_message(images, after=posted)
    await talk.stored.wait(1)
    await emulator.wait_for_content(described, lambda text: text.startswith("||") and "green" in text)

    follow_up, request = await talk.ask(carol, images, "what colour was it?", answer="Green.")

    assert [m.images for m in history_of(request)] == [(SIZE[GREEN],), (), ()]
    assert follow_up.content.startswith("||") and "Green." in follow_up.content
    assert_bot_pinged_nobody(emulator)
