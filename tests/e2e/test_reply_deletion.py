"""Deleting the bot's reply stops it at once, even while the model has not said its first word.

The model stalls before its response headers and the bot's first-token timeout is far longer than
any wait here, so only the deletion event can end the model request: nothing is released, nothing
times out. Deleting the *question* stops the answer the same way, and its reply goes with it (issue 15;
until then the answer was posted anyway: see ``test_deleting_a_message_deletes_the_replies.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    PLACEHOLDER,
    emulator_config,
    paced_like_emulator,
    png,
    reply_to,
)
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.discord.records import RequestRecord
from tests.fakes.vlm import Script, VLMServer

ENTRIES = pytest.mark.parametrize("entry", ["channel", "slash"])


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    # Ten minutes (the settings' maximum): a test that waited for either would fail on its own wait.
    return {**settings_env, "VLM_FIRST_TOKEN_TIMEOUT": "600", "VLM_IDLE_TIMEOUT": "600"}


@dataclass
class Reply:
    """The bot's first message of an answer, and what part of a request path addresses it."""

    message: Message
    address: str
    shown_before: tuple[str, ...]  # what the message showed before the placeholder

    def requests_after(self, emulator: DiscordEmulator, moment: float) -> list[RequestRecord]:
        return [r for r in emulator.requests if r.at > moment and self.address in r.path]


async def ask_for_description(emulator: DiscordEmulator, entry: str, name: str) -> Reply:
    """bob asks for a description of one image; returns the reply once it shows its placeholder."""
    bob = emulator.user("bob")
    if entry == "channel":
        posted = await emulator.post_message(bob, emulator.channel("images"), "", attachments=[(name, png())])
        message = await reply_to(emulator, posted)
        return Reply(message, f"/messages/{message.id}", ())
    general = emulator.channel("general")
    interaction = await emulator.run_slash_command(bob, general, "describe", {"image": (name, png())})
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for_content(original, lambda text: text == PLACEHOLDER)
    return Reply(original, interaction.token, ("",))  # @original and followups: the webhook routes


@ENTRIES
async def test_deleting_the_placeholder_before_the_first_token_closes_the_model_request_at_once(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, entry: str
) -> None:
    vlm.script(Script(text="Words nobody will see.", stall_before_headers=True))
    reply = await ask_for_description(emulator, entry, "first.png")
    [request] = await vlm.wait_for_requests(1)
    await vlm.wait_for(lambda: request.outcome == "stalled")  # the model has said nothing yet

    deleted_at = time.monotonic()
    await emulator.delete_message(reply.message)  # a moderator (or bob) removes the placeholder
    await vlm.wait_for(lambda: request.outcome != "stalled")

    assert request.outcome == "client_disconnected" and request.chunks_sent == 0
    later = await ask_for_description(emulator, entry, "later.png")
    await emulator.wait_for_content(later.message, lambda text: text == "I see 1 image.")  # the bot carries on

    assert reply.message.history == [*reply.shown_before, PLACEHOLDER]
    assert reply.requests_after(emulator, deleted_at) == []  # no edit, no error line, no followup
    if entry == "channel":
        assert emulator.bot_messages(emulator.channel("images")) == [later.message]


async def test_deleting_the_question_while_the_model_is_silent_deletes_the_reply_and_closes_the_request(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script(text="A teal rectangle nobody will see.", stall_before_headers=True))
    bob, images = emulator.user("bob"), emulator.channel("images")
    posted = await emulator.post_message(bob, images, "", attachments=[("a.png", png())])
    reply = await reply_to(emulator, posted)
    [request] = await vlm.wait_for_requests(1)
    await vlm.wait_for(lambda: request.outcome == "stalled")

    await emulator.delete_message(posted)  # bob takes his image back
    await vlm.wait_for(lambda: request.outcome != "stalled")
    await emulator.wait_for(lambda: reply.deleted, what="the placeholder deleted")

    assert request.outcome == "client_disconnected" and request.chunks_sent == 0
    assert reply.history == [PLACEHOLDER]  # never edited: deleted as it was
    assert emulator.bot_messages(images) == []
    assert await glimpse.store.history(images.id) == []


async def test_deleting_an_ocr_reply_before_the_first_token_closes_the_model_request_at_once(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script(text="Text nobody will see.", stall_before_headers=True))
    interaction = await emulator.run_slash_command(
        emulator.user("bob"), emulator.channel("general"), "ocr", {"image": ("page.png", png())}
    )
    [request] = await vlm.wait_for_requests(1)
    await vlm.wait_for(lambda: request.outcome == "stalled")
    original = await emulator.wait_for(lambda: interaction.original)

    await emulator.delete_message(original)
    await vlm.wait_for(lambda: request.outcome != "stalled")

    assert request.outcome == "client_disconnected" and request.chunks_sent == 0
