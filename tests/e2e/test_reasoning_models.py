"""A reasoning model's thinking never reaches the channel, the memory or the INFO log; while it thinks,
the placeholder says "Thinking..." with the seconds elapsed, and the first visible words replace it."""

from __future__ import annotations

import logging
import re

import pytest

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    PLACEHOLDER,
    assert_bot_pinged_nobody,
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
    reply_to,
)
from tests.e2e.steering import buttons, mention
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer

THOUGHT = "SECRET-THOUGHT: the user wants the colour, I should say teal"
THINKING = re.compile(r"Thinking\.\.\. \d+s")


@pytest.mark.parametrize("form", ["field", "tags"])
async def test_thinking_is_shown_as_thinking_and_never_as_text(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reasoning_chunks = len(range(0, len(THOUGHT), 8)) + (2 if form == "tags" else 0)
    vlm.script(Script(text="It is teal.", reasoning=THOUGHT, reasoning_form=form, gated=True))  # type: ignore[arg-type]
    general = emulator.channel("general")
    question = await emulator.post_message(emulator.user("bob"), general, mention(emulator, "what colour?"))
    reply = await reply_to(emulator, question)
    await vlm.wait_for_requests(1)

    await vlm.release(reasoning_chunks)  # all the thinking, no answer yet
    await emulator.wait_for_content(reply, lambda text: bool(THINKING.fullmatch(text)))
    await vlm.release(2)  # the answer
    await emulator.wait_for(lambda: reply.content == "It is teal." and "Regenerate" in buttons(reply.components))

    thinking = [bool(THINKING.fullmatch(text)) for text in reply.history[1:]]
    words = thinking.index(False) + 1  # the first visible words replace "Thinking..."
    assert reply.history[0] == PLACEHOLDER and words > 1 and all(thinking[: words - 1])
    assert all("It is teal.".startswith(text) for text in reply.history[words:])
    everything = [r.content for m in emulator.messages_in(general) for r in m.revisions]
    assert not any("SECRET" in text or "think>" in text for text in everything)
    turns = await glimpse.store.history(general.id)
    assert [t.text for t in turns][-1] == "It is teal." and not any("SECRET" in t.text for t in turns)
    assert "SECRET" not in caplog.text
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)
