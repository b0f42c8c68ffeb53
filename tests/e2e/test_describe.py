"""Describing images end to end, one test per entry point: the real bot, the Discord emulator, the VLM server.

Every assertion is on what the emulator or the VLM server recorded, i.e. what people would see and
what the provider would receive.
"""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    PLACEHOLDER,
    assert_bot_pinged_nobody,
    assert_grows_into,
    emulator_config,
    paced_like_emulator,
    photo_jpeg,
    png,
    release_in_steps,
    reply_to,
)
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer

ZWSP = "\u200b"
DEFERRED = 5
MESSAGE = 4


async def test_image_in_describe_channel_gets_streamed_alt_text(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    pieces = ("A teal rectangle ", "fills the frame, ", "with nothing else in view.")
    answer = "".join(pieces)
    vlm.script(Script(chunks=pieces, gated=True))
    bob, images = emulator.user("bob"), emulator.channel("images")

    posted = await emulator.post_message(bob, images, "look", attachments=[("teal.png", png())])
    reply = await reply_to(emulator, posted)
    [request] = await vlm.wait_for_requests(1)
    await release_in_steps(vlm, emulator, reply, pieces)
    await request.finished.wait()

    # The placeholder, then one edit per released chunk, in order; the last is the model's text exactly.
    assert reply.history == [PLACEHOLDER, pieces[0], pieces[0] + pieces[1], answer]
    assert [r.kind for r in reply.revisions] == ["create", "edit", "edit", "edit"]
    [image] = request.images
    assert (image.width, image.height) == (800, 600)
    assert any("alt text" in text for text in request.texts)
    assert emulator.bot_messages(images) == [reply]
    assert_bot_pinged_nobody(emulator)


async def test_image_outside_describe_channels_is_ignored(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, general, images = emulator.user("bob"), emulator.channel("general"), emulator.channel("images")

    await emulator.post_message(bob, general, "", attachments=[("skip.png", png(color="red"))])
    posted = await emulator.post_message(bob, images, "", attachments=[("keep.png", png(color="blue"))])
    reply = await reply_to(emulator, posted)
    await emulator.wait_for_content(reply, lambda text: text == "I see 1 image.")

    # Both messages were dispatched in order; only the one in the describe channel was answered.
    assert emulator.bot_messages(general) == []
    assert len(vlm.completions) == 1


async def test_spoiler_image_is_described_inside_spoiler_bars(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    pieces = ("A plot twist: ", "the butler ", "holds the knife.")
    answer = "".join(pieces)
    vlm.script(Script(chunks=pieces, gated=True))
    bob, images = emulator.user("bob"), emulator.channel("images")

    posted = await emulator.post_message(bob, images, "", attachments=[("SPOILER_ending.png", png())])
    reply = await reply_to(emulator, posted)
    await vlm.wait_for_requests(1)
    await release_in_steps(vlm, emulator, reply, pieces, wrap=("||", "||"))
    await vlm.completions[0].finished.wait()

    assert len(reply.history) == 1 + len(pieces)
    assert_grows_into(reply.history, answer, wrap=("||", "||"))
    assert_bot_pinged_nobody(emulator)


async def test_spoiler_description_cannot_close_its_spoiler_early(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    answer = "A door sign that reads || EXIT || in red, and a pipe | alone."
    vlm.script(Script(text=answer, chunk_size=7))
    bob, images = emulator.user("bob"), emulator.channel("images")

    posted = await emulator.post_message(bob, images, "", attachments=[("SPOILER_sign.png", png())])
    reply = await reply_to(emulator, posted)
    content = await emulator.wait_for_content(reply, lambda text: text.endswith("alone.||"))

    inner = content.removeprefix("||").removesuffix("||")
    assert "||" not in inner  # the model's own bars cannot end the spoiler
    assert inner.replace(ZWSP, "") == answer  # and nothing visible changed


async def test_mention_with_images_answers_the_question(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    answer = "It is orange, a warm and saturated one."
    vlm.script(answer)
    bob, general = emulator.user("bob"), emulator.channel("general")
    question = "what colour is this square?"

    posted = await emulator.post_message(
        bob, general, f"{emulator.bot_user.mention} {question}", attachments=[("sq.png", png(300, 300, "orange"))]
    )
    reply = await reply_to(emulator, posted)
    await emulator.wait_for_content(reply, lambda text: text == answer)

    [request] = vlm.completions
    assert any(question in text for text in request.texts)
    assert not any(emulator.bot_user.mention in text for text in request.texts)
    [image] = request.images
    assert (image.width, image.height) == (300, 300)
    assert_bot_pinged_nobody(emulator)


async def test_mention_in_describe_channel_gets_one_answer_to_the_question(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    answer = "Two people, both smiling."
    vlm.script(answer)
    bob, images = emulator.user("bob"), emulator.channel("images")
    question = "how many people are there?"

    posted = await emulator.post_message(
        bob, images, f"{emulator.bot_user.mention} {question}", attachments=[("p.png", png())]
    )
    reply = await reply_to(emulator, posted)
    await emulator.wait_for_content(reply, lambda text: text == answer)

    # Answered once, as a question (not also described as alt text).
    assert emulator.bot_messages(images) == [reply]
    [request] = vlm.completions
    assert any(question in text for text in request.texts)


@pytest.mark.parametrize("describe_first", [False, True], ids=["cogs as loaded", "describe cog first"])
async def test_reply_to_the_bot_with_an_image_in_describe_channel_is_answered_as_a_question(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, describe_first: bool
) -> None:
    if describe_first:
        # Which cog hears a message first depends on the order the cogs happen to be loaded in;
        # the answer must not.
        glimpse.extra_events["on_message"].sort(key=lambda listener: listener.__qualname__ != "Describe.on_message")
    vlm.script("A teal square.", "Yes, the navy one is darker.")
    bob, images = emulator.user("bob"), emulator.channel("images")
    posted = await emulator.post_message(bob, images, "", attachments=[("teal.png", png())])
    first = await reply_to(emulator, posted)
    await emulator.wait_for_content(first, lambda text: text == "A teal square.")
    question = "and is this one darker?"

    # A reply to the bot (without pinging it) is part of the conversation, not just another image.
    follow_up = await emulator.reply(
        bob, first, question, attachments=[("navy.png", png(color="navy"))], mention_author=False
    )
    answer = await reply_to(emulator, follow_up)
    await emulator.wait_for_content(answer, lambda text: text == "Yes, the navy one is darker.")

    assert any(question in text for text in vlm.completions[1].texts)
    assert [m.reference_id for m in emulator.bot_messages(images)] == [posted.id, follow_up.id]


async def test_slash_describe_streams_into_the_original_response(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    pieces = ("The left one ", "is darker: navy ", "against olive.")
    answer = "".join(pieces)
    vlm.script(Script(chunks=pieces, gated=True))
    bob, general = emulator.user("bob"), emulator.channel("general")
    prompt = "Which of the two is darker?"

    interaction = await emulator.run_slash_command(
        bob,
        general,
        "describe",
        {
            "image": ("navy.png", png(1600, 1200, "navy")),
            "image2": ("olive.png", png(1200, 1600, "olive")),
            "prompt": prompt,
            "detail": "low",
        },
    )
    await emulator.wait_for_response(interaction)
    [request] = await vlm.wait_for_requests(1)
    original = await emulator.wait_for(lambda: interaction.original)
    await release_in_steps(vlm, emulator, original, pieces)
    await request.finished.wait()

    assert interaction.callback_types == [DEFERRED] and not interaction.ephemeral
    assert interaction.original_history[0] == ""  # the deferred "thinking" state
    assert_grows_into(interaction.original_history[1:], answer)
    assert interaction.followups == []
    assert prompt in request.texts
    # detail=low: both images go small, in order, marked "low".
    assert [(i.width, i.height, i.detail) for i in request.images] == [(512, 384, "low"), (384, 512, "low")]
    assert_bot_pinged_nobody(emulator)


async def test_context_menu_describes_the_images_of_a_message(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    answer = "A khaki square on its own."
    vlm.script(answer)
    bob, carol, general = emulator.user("bob"), emulator.user("carol"), emulator.channel("general")
    target = await emulator.post_message(carol, general, "holiday", attachments=[("beach.png", png(color="khaki"))])

    interaction = await emulator.use_message_command(bob, target, "Describe image")
    await emulator.wait_for_response(interaction)
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda text: text == answer)

    assert interaction.callback_types == [DEFERRED] and not interaction.ephemeral
    assert interaction.original_history == ["", PLACEHOLDER, answer]
    [request] = vlm.completions
    assert [(i.width, i.height) for i in request.images] == [(800, 600)]
    assert emulator.bot_messages(general) == [original]  # carol's image itself was not described
    assert_bot_pinged_nobody(emulator)


async def test_context_menu_on_a_message_without_images_refuses_privately(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, carol, general = emulator.user("bob"), emulator.user("carol"), emulator.channel("general")
    target = await emulator.post_message(carol, general, "just words")

    interaction = await emulator.use_message_command(bob, target, "Describe image")
    await emulator.wait_for_response(interaction)

    assert interaction.callback_types == [MESSAGE] and interaction.ephemeral
    assert interaction.callbacks[0].data["content"] == "That message has no images I can read."
    assert vlm.completions == []
    assert [m for m in emulator.bot_messages(general) if not m.ephemeral] == []


async def test_more_images_than_the_limit_uses_the_first_and_says_so(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    answer = "1. A red square. 2. A green square."
    vlm.script(answer)
    bob, images = emulator.user("bob"), emulator.channel("images")
    files = [(f"{i}.png", png(width, 200)) for i, width in enumerate((300, 400, 500))]

    posted = await emulator.post_message(bob, images, "", attachments=files)
    reply = await reply_to(emulator, posted)
    await emulator.wait_for_content(reply, lambda text: text.startswith(answer + "\n"))

    [request] = vlm.completions
    assert [i.width for i in request.images] == [300, 400]  # exactly two: the first ones
    text, note = reply.content.split("\n")
    assert text == answer
    assert note.startswith("-# ") and "first 2 of 3 images" in note
    assert_bot_pinged_nobody(emulator)


async def test_big_photo_reaches_the_model_small_and_under_one_megabyte(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    photo = photo_jpeg(4000, 3000)
    assert len(photo) * 4 / 3 > 1_000_000  # sent as it is, its base64 would be over the limit
    bob, images = emulator.user("bob"), emulator.channel("images")

    posted = await emulator.post_message(bob, images, "", attachments=[("photo.jpg", photo, "image/jpeg")])
    reply = await reply_to(emulator, posted)
    await emulator.wait_for_content(reply, lambda text: text == "I see 1 image.")

    [image] = vlm.completions[0].images
    assert (image.format, image.mime) == ("JPEG", "image/jpeg")
    assert 512 <= image.width <= 1536 and image.width * 3 == image.height * 4
    assert image.base64_length < 1_000_000
    assert image.tokens < 15_000 // 10  # the raw photo would cost ~15,000 image tokens
