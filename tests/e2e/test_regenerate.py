"""Regenerate and Continue under a finished answer: a new answer streams into the same message and
replaces the old one in the channel's memory; the next part of an answer cut at the length cap
streams into a new message and joins the answer in memory. Clicks are checked when they come."""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from bot.vlm import CUT_SHORT
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_bot_pinged_nobody,
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
    png,
    reply_to,
)
from tests.e2e.steering import button_only_edits, buttons, mention
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.discord.interactions import Interaction
from tests.fakes.vlm import Script, VLMServer
from tests.unit.test_animation_contact_sheet import moving_dot

ENTRIES = pytest.mark.parametrize("entry", ["mention", "ask"])


async def ask(emulator: DiscordEmulator, entry: str, text: str, user: str = "bob") -> Message:
    """``user`` asks in #general; returns the answer's message once it is finished (has its buttons)."""
    general = emulator.channel("general")
    if entry == "mention":
        question = await emulator.post_message(emulator.user(user), general, mention(emulator, text))
        reply = await reply_to(emulator, question)
    else:
        interaction = await emulator.run_slash_command(emulator.user(user), general, "ask", {"prompt": text})
        reply = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for(lambda: "Regenerate" in buttons(reply.components))
    return reply


async def click(emulator: DiscordEmulator, user: str, message: Message, label: str) -> Interaction:
    interaction = await emulator.click_button(emulator.user(user), message, buttons(message.components)[label])
    return await emulator.wait_for_response(interaction)


async def regenerated(emulator: DiscordEmulator, reply: Message, text: str) -> None:
    await emulator.wait_for(lambda: reply.content == text and "Regenerate" in buttons(reply.components))


@ENTRIES
async def test_regenerate_streams_a_new_answer_into_the_message_and_memory_keeps_only_it(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, entry: str
) -> None:
    vlm.script("The first answer.", "The second answer.", "A follow-up answer.")
    reply = await ask(emulator, entry, "what is teal?")
    edits_before = reply.edit_count

    clicked = await click(emulator, "bob", reply, "Regenerate")
    await regenerated(emulator, reply, "The second answer.")

    first, again = await vlm.wait_for_requests(2)
    assert again.texts == first.texts  # the same question, asked from the same memory
    assert clicked.callback_types == [6] and reply.edit_count > edits_before  # into the same message
    assert reply.history[edits_before + 1] == "…"  # it streamed: placeholder (with Stop) first
    assert "Stop" in buttons(reply.revisions[edits_before + 1].components)

    follow_up = await ask(emulator, entry, "and why?")
    request = (await vlm.wait_for_requests(3))[2]
    assert "The second answer." in request.prompt and "The first answer." not in request.prompt
    # The newer answer takes the buttons off the older one: the one edit that has no text to ride on.
    await emulator.wait_for(lambda: buttons(reply.components) == {})
    assert [r.content for r in button_only_edits(reply)] == ["The second answer."]
    assert button_only_edits(follow_up) == [] and "Regenerate" in buttons(follow_up.components)
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_only_the_asker_or_a_moderator_may_regenerate(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("The first answer.", "A moderator's second answer.")
    reply = await ask(emulator, "mention", "what is teal?")

    refused = await click(emulator, "carol", reply, "Regenerate")
    assert refused.ephemeral and refused.original is not None
    assert refused.original.content == "Only the person who asked, or a moderator, can do that."
    assert len(vlm.completions) == 1 and reply.content == "The first answer."

    await click(emulator, "alice", reply, "Regenerate")  # Manage Messages
    await regenerated(emulator, reply, "A moderator's second answer.")
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_an_older_answer_cannot_be_regenerated(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("The first answer.", "The second answer.")
    first = await ask(emulator, "mention", "one")
    stale = first.components
    await ask(emulator, "mention", "two")
    await emulator.wait_for(lambda: buttons(first.components) == {})

    emulator.set_components(first, stale)  # a client that still shows the old button
    refused = await click(emulator, "bob", first, "Regenerate")
    await emulator.wait_for(lambda: refused.followups)
    assert refused.callback_types == [7] and buttons(first.components) == {}  # taken off by the click's response
    assert [m.content for m in refused.followups] == [
        "A newer answer came since: only the newest answer in a channel can be regenerated or continued."
    ]
    assert len(vlm.completions) == 2 and first.content == "The first answer."
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_an_answer_older_than_regenerate_minutes_cannot_be_regenerated(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("The first answer.")
    reply = await ask(emulator, "mention", "one")
    _, action, kind, question, asker = buttons(reply.components)["Regenerate"].split(":")
    old_question = int(question) - (16 * 60 * 1000 << 22)  # the same id, 16 minutes earlier
    row = reply.components[0]
    old_id = f"glimpse:{action}:{kind}:{old_question}:{asker}"
    emulator.set_components(reply, [{**row, "components": [{**row["components"][0], "custom_id": old_id}]}])

    refused = await click(emulator, "bob", reply, "Regenerate")
    await emulator.wait_for(lambda: refused.followups)
    assert [m.content for m in refused.followups] == ["This answer is too old to regenerate or continue."]
    assert buttons(reply.components) == {} and len(vlm.completions) == 1
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_continue_streams_the_rest_into_a_new_message_and_memory_joins_them(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(
        Script(text="Teal is a colour between", finish_reason="length"),
        " blue and green.",
        "Yes.",
    )
    reply = await ask(emulator, "mention", "what is teal?")
    assert reply.content == f"Teal is a colour between\n-# {CUT_SHORT}"
    assert list(buttons(reply.components)) == ["Regenerate", "Continue"]

    clicked = await click(emulator, "bob", reply, "Continue")
    rest = await reply_to(emulator, reply)  # a new message, replying to the first part
    await emulator.wait_for(lambda: rest.content == " blue and green." and "Regenerate" in buttons(rest.components))

    assert clicked.callback_types == [7]  # the old part's buttons and note went with the click's response
    assert reply.content == "Teal is a colour between" and buttons(reply.components) == {}
    request = (await vlm.wait_for_requests(2))[1]
    assert request.texts[-2:] == ("Teal is a colour between", request.texts[-1])
    assert "Continue it exactly where it stopped" in request.texts[-1]

    await ask(emulator, "mention", "is it?")
    follow_up = (await vlm.wait_for_requests(3))[2]
    assert "Teal is a colour between blue and green." in follow_up.prompt
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_regenerating_a_description_describes_the_image_again(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A teal square.", "A flat teal square.")
    interaction = await emulator.run_slash_command(
        emulator.user("bob"), emulator.channel("general"), "describe", {"image": ("a.png", png(64, 64))}
    )
    reply = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for(lambda: "Regenerate" in buttons(reply.components))

    await click(emulator, "bob", reply, "Regenerate")
    await regenerated(emulator, reply, "A flat teal square.")
    first, again = await vlm.wait_for_requests(2)
    assert again.texts == first.texts and len(again.images) == 1  # the stored image, sent again
    assert again.images[0].width == first.images[0].width
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_a_long_answer_regenerated_short_keeps_its_first_message_and_drops_the_rest(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    long_answer = "\n\n".join(f"Paragraph {n}: " + "teal " * 60 for n in range(12))  # about 3,800 characters
    vlm.script(Script(text=long_answer, chunk_size=400), "A short second answer.")
    general = emulator.channel("general")
    question = await emulator.post_message(emulator.user("bob"), general, mention(emulator, "tell me a lot"))
    first = await reply_to(emulator, question)
    second = await reply_to(emulator, first)  # the continuation message
    await emulator.wait_for(lambda: "Regenerate" in buttons(second.components))
    assert buttons(first.components) == {}  # the buttons sit on the last message only

    await click(emulator, "bob", second, "Regenerate")
    await regenerated(emulator, first, "A short second answer.")
    await emulator.wait_for(lambda: second.deleted)  # no longer needed: the new answer is one message
    assert [m.id for m in emulator.bot_messages(general) if not m.deleted] == [first.id]
    turns = await glimpse.store.history(general.id)
    assert [t.text for t in turns] == ["tell me a lot", "A short second answer."]
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_regenerating_an_animations_description_tells_the_model_it_is_one_again(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A dot moves.", "A red dot slides from left to right.")
    images = emulator.channel("images")
    posted = await emulator.post_message(emulator.user("bob"), images, attachments=[("slide.gif", moving_dot(40))])
    reply = await reply_to(emulator, posted)
    await emulator.wait_for(lambda: "Regenerate" in buttons(reply.components))

    await click(emulator, "bob", reply, "Regenerate")
    await regenerated(emulator, reply, "A red dot slides from left to right.")
    first, again = await vlm.wait_for_requests(2)
    assert "Image 1 is an animation: 4 of its frames" in again.prompt and again.texts == first.texts
    assert_discord_refused_nothing(emulator)
