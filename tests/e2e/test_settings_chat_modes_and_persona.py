"""`/settings chat` and `/settings persona`, end to end: a free-response channel, a thread per
conversation, conversation off, and the server's (or a channel's) persona as the system message."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Glimpse
from bot.guild.policy import CHAT_OFF, NO_DMS
from bot.prompts import CHAT_RULES, CHAT_SYSTEM
from cogs.settings import PERSONA_INPUT_ID
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
    png,
)
from tests.e2e.server_settings import answer_of, answered, bot_replies_to, run_settings, submit_form
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.vlm import RecordedRequest, VLMServer


def system_message(request: RecordedRequest) -> str:
    first = request.body["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


def public(messages: list[Message]) -> list[Message]:
    """What everyone sees (an ephemeral answer is the asker's alone)."""
    return [m for m in messages if not m.ephemeral]


def history_texts(request: RecordedRequest) -> list[Any]:
    return [m["content"] for m in request.body["messages"][1:]]


async def test_a_free_response_channel_answers_a_message_without_a_mention(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    quiet = await emulator.post_message(bob, general, "nobody asked you")  # mention mode: not answered
    answer_of(await run_settings(emulator, alice, "chat", {"channel": general, "mode": "every-message"}))

    vlm.script("Hello, Bob.")
    posted = await emulator.post_message(bob, general, "hello there")
    await answered(emulator, vlm, posted, "Hello, Bob.")
    # an image there is part of the conversation (answered once), not described on the side as well
    answer_of(await run_settings(emulator, alice, "describe", {"channel": general, "on": True}))
    vlm.script("A teal square, Bob.")
    image = await emulator.post_message(bob, general, "look", attachments=[("a.png", png())])
    await answered(emulator, vlm, image, "A teal square, Bob.")
    assert len(bot_replies_to(emulator, image)) == 1
    assert bot_replies_to(emulator, quiet) == []
    assert len(vlm.completions) == 2 and system_message(vlm.completions[1]) == CHAT_SYSTEM


async def test_a_thread_mode_channel_opens_a_thread_whose_messages_continue_that_conversation(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    answer_of(await run_settings(emulator, alice, "chat", {"channel": general, "mode": "thread"}))

    vlm.script("Capybaras are large rodents.")
    asked = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> what is a capybara?")
    thread = await emulator.wait_for(lambda: emulator.world.channels.get(asked.id))
    assert thread.is_thread and thread.parent_id == general.id and thread.name == "what is a capybara?"
    first = await emulator.wait_for_message(thread)
    await emulator.wait_for_content(first, lambda text: text == "Capybaras are large rodents.")
    assert public(emulator.bot_messages(general)) == []  # the answer is in the thread, not in the channel

    vlm.script("About 60 cm tall.")
    follow_up = await emulator.post_message(bob, thread, "and how big are they?")  # no mention needed here
    second = await emulator.wait_for_message(thread, after=follow_up)
    await emulator.wait_for_content(second, lambda text: text == "About 60 cm tall.")
    request = vlm.completions[-1]
    assert history_texts(request) == [
        "bob: what is a capybara?", "Capybaras are large rodents.", "bob: and how big are they?"
    ]
    assert second.reference_id == follow_up.id

    vlm.script("Another thread.")
    again = await emulator.post_message(alice, general, f"<@{emulator.bot_user.id}> and wombats?")
    other = await emulator.wait_for(lambda: emulator.world.channels.get(again.id))
    opened = await emulator.wait_for_message(other)
    await emulator.wait_for_content(opened, lambda text: text == "Another thread.")
    assert history_texts(vlm.completions[-1]) == ["alice: and wombats?"]  # each thread its own conversation


async def test_with_conversation_off_a_mention_is_quiet_and_ask_says_why(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    answer_of(await run_settings(emulator, alice, "chat", {"channel": general, "mode": "off"}))
    mention = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> hello?")
    ask = await emulator.run_slash_command(bob, general, "ask", {"prompt": "hello?"})
    await emulator.wait_for_response(ask)
    assert ask.ephemeral and ask.original.content == CHAT_OFF

    vlm.script("Described.")  # /describe is not conversation: it still works there
    described = await emulator.run_slash_command(bob, general, "describe", {"image": ("a.png", png())})
    await emulator.wait_for_response(described)
    await emulator.wait_for_content(described.original, lambda text: text == "Described.")
    assert bot_replies_to(emulator, mention) == [] and len(vlm.completions) == 1


async def test_the_persona_reaches_the_system_message_of_chat_and_ask(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob = emulator.user("alice"), emulator.user("bob")
    general, images = emulator.channel("general"), emulator.channel("images")
    form = await run_settings(emulator, alice, "persona")
    assert form.modal is not None and form.modal["title"] == "Glimpse's persona"
    saved = await submit_form(emulator, alice, form, {PERSONA_INPUT_ID: "You are Captain Glimpse, a pirate."})
    assert answer_of(saved) == "The persona for this server is saved."
    channel_form = await run_settings(emulator, alice, "persona", {"channel": images})
    done = await submit_form(emulator, alice, channel_form, {PERSONA_INPUT_ID: "You speak like a robot."})
    assert answer_of(done) == f"The persona for <#{images.id}> is saved."

    vlm.script("Arr.")
    mention = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> who are you?")
    await answered(emulator, vlm, mention, "Arr.")
    assert system_message(vlm.completions[-1]) == f"You are Captain Glimpse, a pirate.\n\n{CHAT_RULES}"

    vlm.script("Beep.")
    ask = await emulator.run_slash_command(bob, images, "ask", {"prompt": "who are you?"})
    await emulator.wait_for_response(ask)
    await emulator.wait_for_content(ask.original, lambda text: text == "Beep.")
    assert system_message(vlm.completions[-1]) == f"You speak like a robot.\n\n{CHAT_RULES}"

    reset = await run_settings(emulator, alice, "persona")
    cleared = await submit_form(emulator, alice, reset, {PERSONA_INPUT_ID: ""})
    assert answer_of(cleared) == "The persona for this server is reset to the built-in one."
    vlm.script("I am Glimpse.")
    plain = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> and now?")
    await answered(emulator, vlm, plain, "I am Glimpse.")
    assert system_message(vlm.completions[-1]) == CHAT_SYSTEM


async def test_a_persona_longer_than_the_limit_is_not_saved(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice = emulator.user("alice")
    form = await run_settings(emulator, alice, "persona")
    [row] = form.modal["components"]
    assert row["components"][0]["max_length"] == 2000  # Discord's form stops a longer one already


class TestNoDirectMessages:
    @pytest.fixture
    def settings_env(self, emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Any) -> dict[str, str]:
        return bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'g.db'}", ALLOW_DMS="false")

    async def test_dms_are_not_answered_when_the_operator_turned_them_off(
        self, glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
    ) -> None:
        bob = emulator.user("bob")
        dm = emulator.dm(bob)
        quiet = await emulator.post_message(bob, dm, "hello?")
        ask = await emulator.run_slash_command(bob, dm, "ask", {"prompt": "hello?"})
        await emulator.wait_for_response(ask)
        assert ask.ephemeral and ask.original.content == NO_DMS
        vlm.script("In the server, yes.")
        asked = await emulator.post_message(bob, emulator.channel("general"), f"<@{emulator.bot_user.id}> here?")
        await answered(emulator, vlm, asked, "In the server, yes.")
        assert bot_replies_to(emulator, quiet) == [] and public(emulator.bot_messages(dm)) == []
        assert len(vlm.completions) == 1
