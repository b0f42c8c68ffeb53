"""Conversation memory over time and under faults, end to end, on both store backends.

Settings have minute and day granularity, so instead of waiting the tests put turns into the store
with old timestamps through its public API (the state a real idle period or a month of use leaves)
and then let the real bot, on the emulator and the VLM server, act on it: the idle expiry is seen in
the request the model receives, the retention purge in what the store still holds.
"""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from bot.app import Glimpse
from bot.conversation import ImageRef, Turn
from bot.images import prepare_image
from bot.store import Store
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
    photo_jpeg,
)
from tests.e2e.test_conversation import RED, Talk, history_of, request_text
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer
from tests.store.conftest import redis_url, store_url  # noqa: F401  (fixtures: a fresh SQLite file or Redis db)

DAY = 86400.0


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, store_url: str) -> dict[str, str]:  # noqa: F811
    return bot_environment(emulator, vlm, store_url)  # defaults: 1440 idle minutes, 30 retention days


@pytest.fixture
def talk(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> Talk:
    return Talk.watching(glimpse, emulator, vlm)


def exchange(text: str, answer: str, *, at: float, message_id: int, image: bytes | None = None):  # type: ignore[no-untyped-def]
    """A remembered question (with a prepared image) and its answer, both created at ``at``."""
    prepared = [prepare_image(image)] if image else []
    question = Turn("user", "bob", 3, text, tuple(ImageRef.of(p) for p in prepared), at, message_id)
    return question, Turn("assistant", "Glimpse", 0, answer, created_at=at + 1), prepared


async def remember(store: Store, channel_id: int, text: str, answer: str, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    question, reply, prepared = exchange(text, answer, **kwargs)
    assert await store.append_exchange(channel_id, question, reply, prepared)
    return [image.sha256 for image in prepared]


async def test_an_idle_conversation_starts_afresh(talk: Talk, glimpse: Glimpse, emulator: DiscordEmulator) -> None:
    alice, general = emulator.user("alice"), emulator.channel("general")
    now = time.time()
    # a day and a half ago, then nothing for 28 hours (more than MEMORY_IDLE_MINUTES), then 2 hours ago
    await remember(
        glimpse.store, general.id, "the codeword is WALRUS", "Noted: WALRUS.", at=now - 30 * 3600, message_id=1
    )
    await remember(glimpse.store, general.id, "the colour is TEAL", "Noted: TEAL.", at=now - 2 * 3600, message_id=2)

    context = await talk.command(alice, general, "context")
    assert "use 2 remembered messages" in context

    _, request = await talk.ask(alice, general, "what do you remember?", answer="TEAL.")
    assert [m.text for m in history_of(request)] == [
        "bob: the colour is TEAL",
        "Noted: TEAL.",
        "alice: what do you remember?",
    ]
    assert "WALRUS" not in request_text(request)


async def test_forget_deletes_the_channels_image_bytes_from_the_store(
    talk: Talk, glimpse: Glimpse, emulator: DiscordEmulator
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    await talk.ask(bob, general, "what is this?", attachments=[RED], answer="A red rectangle.")
    [question, _] = await glimpse.store.history(general.id)
    [ref] = question.images
    assert set(await glimpse.store.get_images([ref.sha256])) == {ref.sha256}

    assert "forgot" in await talk.command(alice, general, "forget")

    assert await glimpse.store.history(general.id) == []
    assert await glimpse.store.get_images([ref.sha256]) == {}
    assert (await glimpse.store.stats()).images == 0


async def test_only_the_prepared_image_is_stored_never_the_original(
    talk: Talk, glimpse: Glimpse, emulator: DiscordEmulator
) -> None:
    original = photo_jpeg(4000, 3000)
    bob, general = emulator.user("bob"), emulator.channel("general")
    _, request = await talk.ask(bob, general, "what is this?", attachments=[("photo.jpg", original)], answer="A photo.")

    [question, _] = await glimpse.store.history(general.id)
    [ref] = question.images
    stored = (await glimpse.store.get_images([ref.sha256]))[ref.sha256]
    [sent] = request.images
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (ref.width, ref.height) == (sent.width, sent.height)
        assert max(image.size) < 4000
    assert len(stored) < len(original)
    assert (await glimpse.store.stats()).image_bytes == len(stored)



async def test_a_file_that_is_not_an_image_is_said_to_be_skipped_not_swapped_for_the_image_above(
    talk: Talk, emulator: DiscordEmulator
) -> None:
    bob, carol, general = emulator.user("bob"), emulator.user("carol"), emulator.channel("general")
    await emulator.post_message(bob, general, "my wallpaper", attachments=[RED])

    reply, request = await talk.ask(
        carol, general, "what does this say?", attachments=[("notes.txt", b"hello")], answer="I see no image."
    )
    assert [(m.text, m.images) for m in history_of(request)] == [("carol: what does this say?", ())]
    content = await emulator.wait_for_content(reply, lambda text: "Skipped notes.txt: it is not an image." in text)
    assert "posted above" not in content
