"""A flood of large attachments stays within the bot's download budget, through every feature at once.

The running bot's :class:`~bot.images.attachments.DownloadGate` is swapped for one with room for two of the
test's images, and image preparation is held shut while the flood arrives, so the state at the peak
is the same on any machine: two downloads admitted (and fetched from the CDN), everyone else waiting
without having fetched anything. Then preparation opens and every request is answered, while the
bytes the CDN served and the gate has not released never exceed the budget.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from PIL import Image

from bot.app import Glimpse
from bot.images import DownloadGate
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
    reply_to,
)
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.vlm import RecordedRequest, VLMServer

ANSWER = "Some shapes."
FLAGGED = json.dumps(
    {"flagged": True, "categories": ["scam"], "severity": 2, "reason": "A fake giveaway.", "rule": "No scams"}
)
_T = TypeVar("_T")


class RecordingGate(DownloadGate):
    """The gate, noting at each release how many downloads the CDN had served by then."""

    def __init__(self, max_bytes: int, served: Callable[[], int]) -> None:
        super().__init__(max_bytes)
        self._served = served
        self.releases: list[tuple[int, int]] = []  # (CDN downloads so far, bytes released)

    def release(self, size: int) -> None:
        self.releases.append((self._served(), size))
        super().release(size)


def noise_png(seed: int) -> bytes:
    """An incompressible picture (~200 kB): large for the test's budget, distinct per seed."""
    pixels = random.Random(seed).randbytes(256 * 256 * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (256, 256), pixels).save(buffer, "PNG")
    return buffer.getvalue()


def held_until(opened: asyncio.Event, prepare: Callable[..., Awaitable[_T]]) -> Callable[..., Awaitable[_T]]:
    async def held(*args: Any, **kwargs: Any) -> _T:
        await opened.wait()
        return await prepare(*args, **kwargs)

    return held


def answer(request: RecordedRequest) -> str:
    return FLAGGED if "moderation classifier" in request.prompt else ANSWER


async def setup_moderation(emulator: DiscordEmulator) -> None:
    """alice (a moderator) watches #general, logging to #mod-log."""
    general = emulator.channel("general")
    values = {"mod_log": emulator.channel("mod-log"), "add_channel": general}
    interaction = await emulator.run_slash_command(emulator.user("alice"), general, "moderation setup", values)
    await emulator.wait_for_answer(interaction)
    assert interaction.original is not None and interaction.original.content == "Saved."


def outstanding_peak(emulator: DiscordEmulator, gate: RecordingGate) -> int:
    """The most bytes ever served by the CDN and not yet released by the gate."""
    served = [len(emulator.cdn.attachments[attachment_id].data) for attachment_id in emulator.cdn.downloads]
    released = peak = 0
    for downloads_then, size in gate.releases:  # the count only grows between releases: peaks are here
        peak = max(peak, sum(served[:downloads_then]) - released)
        released += size
    assert released == sum(served), "every byte served was released, and nothing was fetched around the gate"
    return peak


async def test_a_flood_of_large_attachments_keeps_downloads_within_the_budget_and_is_all_answered(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = [noise_png(seed) for seed in range(5)]
    sizes = [len(data) for data in images]
    budget = 2 * max(sizes) + min(sizes) // 2  # room for two, never three
    gate = RecordingGate(budget, served=lambda: len(emulator.cdn.downloads))
    glimpse.downloads = gate  # OCR's
    glimpse.shared_images.gate = gate  # describe's, chat's and moderation's
    opened = asyncio.Event()
    for name in ("prepare", "prepare_text_images"):
        monkeypatch.setattr(glimpse.images, name, held_until(opened, getattr(glimpse.images, name)))
    vlm.respond_with(answer)
    await setup_moderation(emulator)
    alice, bob, carol = emulator.user("alice"), emulator.user("bob"), emulator.user("carol")
    general, channel = emulator.channel("general"), emulator.channel("images")

    # Seven downloads: describe (two posts in #images), moderation (bob's two in #general), chat
    # (carol's question in #images: not watched, so it need not wait for a verdict) and OCR (bob's
    # two again, as alice's copy in #mod-log: not watched either, so it too goes straight to the gate;
    # on the flagged pair itself it would answer that moderation flagged it). At the peak all seven
    # stand at the gate: two admitted, five waiting.
    described = [
        await emulator.post_message(alice, channel, "", attachments=[(f"d{i}.png", images[i])]) for i in range(2)
    ]
    await emulator.post_message(bob, general, "", attachments=[("p2.png", images[2]), ("p3.png", images[3])])
    question = await emulator.post_message(
        carol, channel, f"<@{emulator.bot_user.id}> what is this?", attachments=[("q.png", images[4])]
    )
    again = await emulator.post_message(
        alice, emulator.channel("mod-log"), "", attachments=[("p2.png", images[2]), ("p3.png", images[3])]
    )
    ocr = await emulator.use_message_command(alice, again, "Extract text")
    await emulator.wait_for(lambda: gate.holders == 2 and gate.waiting == 5, timeout=10, what="the flood at the gate")
    await emulator.wait_for(lambda: len(emulator.cdn.downloads) >= 2, timeout=10)
    assert len(emulator.cdn.downloads) == 2  # only what was admitted has been fetched
    assert gate.in_use <= budget

    opened.set()
    for posted in (*described, question):
        reply = await reply_to(emulator, posted)
        await emulator.wait_for_content(reply, lambda content: ANSWER in content, timeout=15)
    await emulator.wait_for(lambda: ocr.original is not None and len(ocr.followups) == 1, timeout=15)
    for message in (ocr.original, ocr.followups[0]):
        assert isinstance(message, Message)
        await emulator.wait_for_content(message, lambda content: ANSWER in content, timeout=15)
    modlog = emulator.channel("mod-log")
    await emulator.wait_for(lambda: len([m for m in emulator.bot_messages(modlog) if m.embeds]) == 2, timeout=15)

    assert len(emulator.cdn.downloads) == 7
    assert (gate.in_use, gate.holders, gate.waiting) == (0, 0, 0)
    assert 2 * min(sizes) <= gate.peak <= budget
    assert outstanding_peak(emulator, gate) <= budget
