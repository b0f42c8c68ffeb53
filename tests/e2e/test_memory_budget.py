"""Memory stays bounded: an over-long conversation is trimmed to the configured turns, tokens and images.

The limits are set low through the bot's environment (MEMORY_MAX_TOKENS, MEMORY_MAX_TURNS,
MAX_IMAGES_PER_REQUEST); the assertions are on the requests the VLM server received, whose prompt
tokens it counts the way Qwen2.5-VL bills them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import Glimpse
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
)
from tests.e2e.test_conversation import SentMessage, Talk, history_of
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer, image_bytes, image_tokens

MAX_TOKENS = 700
MAX_TURNS = 6
MAX_IMAGES = 2
EXCHANGES = 5
# Small images of distinct widths (4..8 blocks of 28 px by 3): each is recognisable by its size.
SIZES = [(28 * (4 + i), 84) for i in range(EXCHANGES)]
IMAGES = [(f"picture-{i}.png", image_bytes(w, h, color="orange")) for i, (w, h) in enumerate(SIZES)]


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    return bot_environment(
        emulator,
        vlm,
        f"sqlite:///{tmp_path / 'glimpse.db'}",
        MEMORY_MAX_TOKENS=str(MAX_TOKENS),
        MEMORY_MAX_TURNS=str(MAX_TURNS),
        MAX_IMAGES_PER_REQUEST=str(MAX_IMAGES),
    )


@pytest.fixture
def talk(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> Talk:
    return Talk.watching(glimpse, emulator, vlm)


def padded(head: str, length: int) -> str:
    """``head`` followed by filler words up to ``length`` characters."""
    filler = " and so on" * (length // 10 + 1)
    return (head + filler)[:length].rstrip()


async def converse(talk: Talk, emulator: DiscordEmulator, length: int) -> tuple[list[str], list[str]]:
    """Alice shows one image per exchange with a question of ``length`` characters; returns questions
    and answers."""
    alice, general = emulator.user("alice"), emulator.channel("general")
    questions, answers = [], []
    for index, image in enumerate(IMAGES):
        question, answer = padded(f"question {index}:", length), padded(f"answer {index}:", length)
        await talk.ask(alice, general, question, attachments=[image], answer=answer)
        questions.append(f"alice: {question}")
        answers.append(answer)
    return questions, answers


def conversation_suffix(sent: list[SentMessage], questions: list[str], answers: list[str]) -> int:
    """How many of the remembered turns ``sent`` (history only, without the current question) holds,
    checking they are the newest ones, in order, each question with its own image or a placeholder
    carrying the bot's earlier answer about it."""
    turns = [turn for pair in zip(questions, answers, strict=True) for turn in pair]
    kept = turns[len(turns) - len(sent) :]
    for message, expected in zip(sent, kept, strict=True):
        if expected in answers:
            assert (message.role, message.text) == ("assistant", expected)
            continue
        index = questions.index(expected)
        assert message.role == "user" and message.text.startswith(expected)
        if message.images:
            assert message.images == (SIZES[index],)
        else:  # an older image: replaced by what the bot said about it
            assert message.text.startswith(f"{expected}\n[image: {answers[index][:30]}"), message.text
    return len(sent)


async def test_an_over_long_conversation_is_cut_to_the_token_budget(talk: Talk, emulator: DiscordEmulator) -> None:
    questions, answers = await converse(talk, emulator, length=400)  # ~100 tokens per turn

    _, request = await talk.ask(emulator.user("alice"), emulator.channel("general"), "which was widest?", answer="4.")

    assert request.parsed is not None
    assert request.parsed.prompt_tokens <= MAX_TOKENS
    assert len(request.images) <= MAX_IMAGES
    sent = history_of(request)
    assert sent[-1].text == "alice: which was widest?"
    kept = conversation_suffix(sent[:-1], questions, answers)
    assert 0 < kept < MAX_TURNS, "the token budget, not the turn limit, must have cut this history"
    assert "question 0:" not in request.prompt


async def test_the_newest_images_are_sent_and_older_ones_become_their_descriptions(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    questions, answers = await converse(talk, emulator, length=40)

    _, request = await talk.ask(emulator.user("alice"), emulator.channel("general"), "which was widest?", answer="4.")

    sent = history_of(request)
    assert conversation_suffix(sent[:-1], questions, answers) == MAX_TURNS
    assert [size for message in sent for size in message.images] == SIZES[-MAX_IMAGES:]
    assert "[image: answer 2:" in sent[0].text  # the oldest remembered image went as its description
    assert [(image.width, image.height) for image in request.images] == SIZES[-MAX_IMAGES:]
    assert request.parsed is not None
    assert request.parsed.prompt_tokens <= MAX_TOKENS
    assert sum(image.tokens for image in request.images) == sum(image_tokens(w, h) for w, h in SIZES[-MAX_IMAGES:])


async def test_context_counts_what_the_next_question_uses_and_forget_counts_what_is_stored(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    alice, general = emulator.user("alice"), emulator.channel("general")
    for index in range(4):
        await talk.ask(alice, general, f"question {index}", answer=f"answer {index}.")

    context = await talk.command(alice, general, "context")
    assert f"use {MAX_TURNS} remembered messages" in context and f"at most {MAX_TURNS} messages" in context
    assert "forgot" in (done := await talk.command(alice, general, "forget")) and "8 stored messages" in done
