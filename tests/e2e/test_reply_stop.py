"""Stop on a streaming reply: the asker (or a moderator) closes the model request at once and keeps
what was written with a "(stopped)" line; anyone else is refused and the answer goes on."""

from __future__ import annotations

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_bot_pinged_nobody,
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
    release_in_steps,
    reply_to,
)
from tests.e2e.steering import button_only_edits, buttons, mention
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.vlm import RecordedRequest, Script, VLMServer

WORDS = ["word0", *(f" word{n}" for n in range(1, 40))]


async def streaming_answer(emulator: DiscordEmulator, vlm: VLMServer, asker: str) -> tuple[Message, RecordedRequest]:
    """``asker`` asks in #general; returns the reply once it shows three words (the model then waits)."""
    vlm.script(Script(chunks=tuple(WORDS), gated=True))
    question = await emulator.post_message(emulator.user(asker), emulator.channel("general"), mention(emulator, "go"))
    reply = await reply_to(emulator, question)
    [request] = await vlm.wait_for_requests(1)
    await release_in_steps(vlm, emulator, reply, WORDS[:3])
    return reply, request


async def test_the_asker_stops_the_answer_the_request_closes_and_the_text_stays(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    reply, request = await streaming_answer(emulator, vlm, "bob")
    assert list(buttons(reply.components)) == ["Stop"]

    click = await emulator.click_button(emulator.user("bob"), reply, buttons(reply.components)["Stop"])
    await vlm.wait_for(lambda: request.finished.is_set())

    assert request.disconnected and request.chunks_sent <= 3 + 1  # closed before it wrote more
    final = "".join(WORDS[:3]) + "\n-# (stopped)"
    await emulator.wait_for_content(reply, lambda text: text == final)
    assert list(buttons(reply.components)) == ["Regenerate"]  # Stop went with the final edit
    assert click.callback_types == [6] and not click.followups  # acknowledged, nothing else said
    assert button_only_edits(reply) == []
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_a_moderator_may_stop_someone_elses_answer(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    reply, request = await streaming_answer(emulator, vlm, "bob")
    await emulator.click_button(emulator.user("alice"), reply, buttons(reply.components)["Stop"])  # Manage Messages
    await vlm.wait_for(lambda: request.finished.is_set())
    assert request.disconnected
    await emulator.wait_for_content(reply, lambda text: text.endswith("(stopped)"))
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_anyone_else_is_refused_and_the_answer_goes_on(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    reply, request = await streaming_answer(emulator, vlm, "bob")
    click = await emulator.click_button(emulator.user("carol"), reply, buttons(reply.components)["Stop"])
    await emulator.wait_for_response(click)

    assert click.ephemeral and click.original is not None
    assert click.original.content == "Only the person who asked, or a moderator, can do that."
    for _ in WORDS[3:]:  # the stream goes on to its end
        await vlm.release(1)
    await emulator.wait_for_content(reply, lambda text: text == "".join(WORDS))
    assert request.outcome == "completed" and "(stopped)" not in reply.content
    assert list(buttons(reply.components)) == ["Regenerate"]
    assert button_only_edits(reply) == []
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_stop_on_an_ask_answer_keeps_its_text_in_the_original_response(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script(chunks=tuple(WORDS), gated=True))
    general = emulator.channel("general")
    interaction = await emulator.run_slash_command(emulator.user("bob"), general, "ask", {"prompt": "go"})
    [request] = await vlm.wait_for_requests(1)
    await vlm.release(2)
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for(lambda: original.content == "".join(WORDS[:2]) and "Stop" in buttons(original.components))

    await emulator.click_button(emulator.user("bob"), original, buttons(original.components)["Stop"])
    await vlm.wait_for(lambda: request.finished.is_set())
    assert request.disconnected
    await emulator.wait_for_content(original, lambda text: text == "".join(WORDS[:2]) + "\n-# (stopped)")
    assert list(buttons(original.components)) == ["Regenerate"]
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)


async def test_a_stop_button_left_by_an_answer_cut_off_by_a_restart_goes_when_clicked(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A finished answer.")
    general, bob = emulator.channel("general"), emulator.user("bob")
    question = await emulator.post_message(bob, general, mention(emulator, "go"))
    reply = await reply_to(emulator, question)
    await emulator.wait_for(lambda: "Regenerate" in buttons(reply.components))
    row = reply.components[0]
    stale = {**row["components"][0], "label": "Stop", "custom_id": f"glimpse:stop:{bob.id}", "style": 4}
    emulator.set_components(reply, [{**row, "components": [stale]}])  # as a process killed mid-answer left it

    clicked = await emulator.click_button(bob, reply, f"glimpse:stop:{bob.id}")
    await emulator.wait_for(lambda: clicked.followups)
    assert clicked.callback_types == [7] and buttons(reply.components) == {}  # with the click's own response
    assert [m.content for m in clicked.followups] == ["This answer is not being written any more."]
    assert reply.content == "A finished answer." and len(vlm.completions) == 1
    assert_discord_refused_nothing(emulator)
