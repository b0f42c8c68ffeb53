"""A chat answer that would run past ANSWER_MAX_MESSAGES messages ends as a preview and a .txt with the
whole answer; an answer the model stopped at its max_tokens says so in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import Glimpse
from bot.replies.textsplit import split_message
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
    reply_chain,
    reply_to,
)
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer

SENTENCE = "The harbour is quiet at dawn and the boats rock gently on the grey water. "
ANSWER = "\n\n".join(f"Part {n}. " + SENTENCE * 10 for n in range(9))[:6000]


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    return bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'glimpse.db'}", ANSWER_MAX_MESSAGES="2")


async def test_a_six_thousand_character_answer_with_a_cap_of_two_messages_ends_as_a_preview_and_a_file(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    assert len(ANSWER) == 6000 and len(split_message(ANSWER)) > 2
    vlm.script(Script(text=ANSWER, chunk_size=400, finish_reason="length"))
    general = emulator.channel("general")
    posted = await emulator.post_message(emulator.user("bob"), general, f"<@{emulator.bot_user.id}> tell me all")
    first = await reply_to(emulator, posted)

    def finished() -> bool:
        chain = reply_chain(emulator, first)
        return len(chain) == 2 and bool(chain[1].attachments)

    await emulator.wait_for(finished, timeout=15)
    first_message, last = reply_chain(emulator, first)
    assert first_message.content == split_message(ANSWER)[0]  # the first message in full
    preview, attached, note = last.content.rsplit("\n", 2)
    assert preview and ANSWER[len(first_message.content) :].startswith(preview)  # then a preview of the rest
    assert attached == "The full text (6,000 characters) is attached as answer.txt."
    assert note == "-# (stopped at the length cap)"
    [file] = last.attachments
    assert (file.filename, file.data.decode()) == ("answer.txt", ANSWER)
    assert len(emulator.bot_messages(general)) == 2  # never a third message
