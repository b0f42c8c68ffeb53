"""Deleting a message takes the bot's replies about it along, and its exchange out of memory (issue 15):
whoever deletes it (its author, the bot's moderation, a moderator's mod-log button, a purge), the whole
answer goes (every message of it), no description of it stays up, the next question's request holds
nothing of it (a restart in between changes nothing: ``test_deleting_a_message_after_a_restart.py``).
Discord refuses none of the bot's deletes
(each reply is deleted once, never one a purge took already)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.app import Glimpse
from bot.conversation import Turn
from bot.moderation import ButtonAction
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
    reply_chain,
    reply_to,
)
from tests.e2e.server_settings import answer_of, run_settings
from tests.e2e.steering import buttons, mention
from tests.e2e.test_moderation import (
    CLEAN,
    SCAM,
    click,
    deletes,
    next_entry,
    picture,
    setup_moderation,
    verdict,
)
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.vlm import RecordedRequest, VLMServer

ALT_TEXT = "A cat asleep on a red sofa."
SCAM_LINK = "https://nitro-gift.example/claim.png"
LONG_ANSWER = "\n\n".join(f"Part {n} of the PELICAN story: " + "the pelican flew on. " * 60 for n in range(4))


async def described(emulator: DiscordEmulator, posted: Message) -> Message:
    """The bot's description of ``posted``, once it is final (its Regenerate button is on)."""
    reply = await reply_to(emulator, posted)
    await emulator.wait_for(lambda: "Regenerate" in buttons(reply.components), what="the final description")
    return reply


async def remembered(glimpse: Glimpse, channel_id: int, *, at_most: int) -> list[Turn]:
    """The channel's memory once it holds at most ``at_most`` turns (a deleted exchange goes just before
    its replies do, or once a reply still being written is done)."""
    async with asyncio.timeout(5):
        while len(turns := await glimpse.store.history(channel_id)) > at_most:  # noqa: ASYNC110 (no event)
            await asyncio.sleep(0.02)
    return turns


async def forgotten(glimpse: Glimpse, channel_id: int) -> None:
    assert await remembered(glimpse, channel_id, at_most=0) == []


async def test_the_author_deleting_a_question_deletes_the_whole_answer_and_its_memory(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    assert len(LONG_ANSWER) > 2 * 2000
    vlm.script(LONG_ANSWER, "I remember no story.")
    bob, general = emulator.user("bob"), emulator.channel("general")
    question = await emulator.post_message(bob, general, mention(emulator, "tell me the PELICAN story"))
    first = await reply_to(emulator, question)
    await emulator.wait_for(lambda: "Regenerate" in buttons(reply_chain(emulator, first)[-1].components))
    answer = reply_chain(emulator, first)
    assert len(answer) > 2 and "".join(m.content for m in answer).count("PELICAN") == 4

    await emulator.delete_message(question)  # bob thinks better of it
    await emulator.wait_for(lambda: all(m.deleted for m in answer), what="every message of the answer deleted")

    assert emulator.bot_messages(general) == []
    assert sorted(int(r.path.rsplit("/", 1)[1]) for r in deletes(emulator)) == [m.id for m in answer]
    assert await glimpse.store.history(general.id) == []
    again = await emulator.post_message(bob, general, mention(emulator, "what did you tell me?"))
    await emulator.wait_for_content(await reply_to(emulator, again), lambda text: text == "I remember no story.")
    asked: RecordedRequest = vlm.completions[-1]
    assert "PELICAN" not in asked.prompt and "what did you tell me?" in asked.prompt


@pytest.fixture
async def described_then_flagged(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Message, Message, Message]]:
    """In #images, described and watched: bob's cat is clean and described; then he edits a scam link
    into the message, whose preview moderation flags. (posted, its description, the mod-log entry)."""
    images = emulator.channel("images")
    automatic = {"medium": "delete"} if request.param == "automatically" else {}
    await setup_moderation(emulator, add_channel=images, **automatic)
    verdicts = iter([verdict(CLEAN), verdict(SCAM)])
    vlm.respond_with(lambda r: next(verdicts) if "moderation classifier" in r.prompt else ALT_TEXT)
    emulator.media.link(SCAM_LINK, picture(702))
    posted = await emulator.post_message(emulator.user("bob"), images, "", attachments=[("cat.png", picture(701))])
    description = await described(emulator, posted)
    assert description.content == ALT_TEXT and len(await glimpse.store.history(images.id)) == 2

    await emulator.edit_message(posted, f"free nitro {SCAM_LINK}")
    yield posted, description, await next_entry(emulator)


@pytest.mark.parametrize("described_then_flagged", ["automatically", "by a moderator"], indirect=True)
async def test_a_message_moderation_deletes_keeps_no_description(
    glimpse: Glimpse, emulator: DiscordEmulator, described_then_flagged: tuple[Message, Message, Message]
) -> None:
    posted, description, entry = described_then_flagged
    if not posted.deleted:  # logged only: alice uses the entry's Delete button
        await click(emulator, "alice", entry, ButtonAction.DELETE)
    await emulator.wait_for(lambda: posted.deleted and description.deleted, what="the description deleted")

    images = emulator.channel("images")
    assert emulator.bot_messages(images) == []
    await forgotten(glimpse, images.id)
    assert [m for m in emulator.bot_messages(emulator.channel("mod-log")) if m.deleted] == []  # the entry stays


async def test_a_bulk_delete_takes_the_descriptions_of_every_message_it_deletes(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.respond_with(lambda r: ALT_TEXT)
    bob, images = emulator.user("bob"), emulator.channel("images")
    first = await emulator.post_message(bob, images, "", attachments=[("one.png", picture(1))])
    first_description = await described(emulator, first)
    second = await emulator.post_message(bob, images, "", attachments=[("two.png", picture(2))])
    second_description = await described(emulator, second)
    kept = await emulator.post_message(bob, images, "", attachments=[("three.png", picture(3))])
    kept_description = await described(emulator, kept)

    # A moderator purges bob's first two images, and the first description with them.
    await emulator.bulk_delete([first, first_description, second])
    await emulator.wait_for(lambda: second_description.deleted, what="the second description deleted")

    assert emulator.bot_messages(images) == [kept_description]
    assert [r.path.rsplit("/", 1)[1] for r in deletes(emulator)] == [str(second_description.id)]
    turns = await remembered(glimpse, images.id, at_most=2)
    assert [t.message_id for t in turns if t.role == "user"] == [kept.id]


async def test_deleting_the_message_that_opened_a_conversation_thread_deletes_its_answer_there(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    answer_of(await run_settings(emulator, alice, "chat", {"channel": general, "mode": "thread"}))
    vlm.script("Capybaras are large rodents.", "About 60 cm tall.")
    asked = await emulator.post_message(bob, general, mention(emulator, "what is a capybara?"))
    thread = await emulator.wait_for(lambda: emulator.world.channels.get(asked.id))
    first = await emulator.wait_for_message(thread)
    await emulator.wait_for(lambda: "Regenerate" in buttons(first.components))
    follow_up = await emulator.post_message(bob, thread, "and how big are they?")
    second = await emulator.wait_for_message(thread, after=follow_up)
    await emulator.wait_for(lambda: "Regenerate" in buttons(second.components) and not first.components)

    await emulator.delete_message(asked)  # the thread stays, as in Discord; the answer to it goes
    await emulator.wait_for(lambda: first.deleted, what="the first answer deleted")

    assert emulator.bot_messages(thread) == [second]  # the follow-up's answer is about the follow-up
    turns = await remembered(glimpse, thread.id, at_most=2)
    assert [t.text for t in turns] == ["and how big are they?", "About 60 cm tall."]


async def test_deleting_a_message_deletes_a_describe_image_answer_about_it(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.respond_with(lambda r: ALT_TEXT)
    general = emulator.channel("general")  # not a describe channel: alice asks with the context menu
    posted = await emulator.post_message(emulator.user("bob"), general, "", attachments=[("cat.png", picture(9))])
    interaction = await emulator.use_message_command(emulator.user("alice"), posted, "Describe image")
    answer = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for(lambda: "Regenerate" in buttons(answer.components), what="the final description")
    assert answer.content == ALT_TEXT and len(await glimpse.store.history(general.id)) == 2

    await emulator.delete_message(posted)
    await emulator.wait_for(lambda: answer.deleted, what="the description deleted")

    assert emulator.bot_messages(general) == []
    await forgotten(glimpse, general.id)  # remembered under alice's interaction, it goes too


async def test_deleting_a_message_deletes_the_text_extract_text_read_from_it(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.respond_with(lambda r: "FREE NITRO: scan the code")
    general = emulator.channel("general")
    posted = await emulator.post_message(
        emulator.user("bob"), general, "", attachments=[("a.png", picture(11)), ("b.png", picture(12))]
    )
    interaction = await emulator.use_message_command(emulator.user("alice"), posted, "Extract text")

    def read() -> list[Message]:  # one message per image, each final (its Stop button gone)
        shown = [m for m in (interaction.original, *interaction.followups) if m is not None]
        done = len(shown) == 2 and all("FREE NITRO" in m.content and not m.components for m in shown)
        return shown if done else []

    answer = await emulator.wait_for(read, what="both images read")
    await emulator.delete_message(posted)
    await emulator.wait_for(lambda: all(m.deleted for m in answer), what="the reading deleted")
    assert emulator.bot_messages(general) == []
