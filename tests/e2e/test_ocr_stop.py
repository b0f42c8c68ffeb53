"""Stop on an OCR reading: the asker closes the model request; the text read so far stays, "(stopped)" under it."""

from __future__ import annotations

from bot.app import Glimpse
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_bot_pinged_nobody,
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
    png,
)
from tests.e2e.steering import buttons
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer

LINES = tuple(f"Line {n} of the receipt\n" for n in range(30))


async def test_the_asker_stops_a_reading(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    vlm.script(Script(chunks=LINES, gated=True))
    general, bob = emulator.channel("general"), emulator.user("bob")
    interaction = await emulator.run_slash_command(bob, general, "ocr", {"image": ("r.png", png(400, 300))})
    [request] = await vlm.wait_for_requests(1)
    await vlm.release(2)
    original = await emulator.wait_for(lambda: interaction.original)
    await emulator.wait_for(lambda: "Line 1 of" in original.content and "Stop" in buttons(original.components))

    refused = await emulator.click_button(emulator.user("carol"), original, buttons(original.components)["Stop"])
    await emulator.wait_for_response(refused)
    assert refused.ephemeral and request.outcome == "pending"  # someone else: the reading goes on

    await emulator.click_button(bob, original, buttons(original.components)["Stop"])
    await vlm.wait_for(lambda: request.finished.is_set())
    assert request.disconnected and request.chunks_sent <= 3
    await emulator.wait_for_content(original, lambda text: text.endswith("\n-# (stopped)"))
    assert "Line 0 of the receipt" in original.content and buttons(original.components) == {}
    assert_discord_refused_nothing(emulator)
    assert_bot_pinged_nobody(emulator)
