"""OCR against hostile input and bad luck: broken files, a deleted reply, model text that tries to ping.

Same fixtures as ``test_ocr.py`` (a faster Discord, gated streams).
"""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from tests.e2e.helpers import psd, truncated_png
from tests.e2e.test_ocr import (  # noqa: F401  (fixtures: a faster Discord, a bot paced to match)
    LINES,
    assert_sent_cleanly,
    bot,
    code_block,
    emulator_config,
    final,
    needs_offline_engine,
    run_ocr,
    text_page,
)
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer


@pytest.mark.parametrize("engine", ["model", pytest.param("local", marks=needs_offline_engine)])
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cut.png", truncated_png()),
        ("design.psd", psd()),
        ("notes.png", b"just some text, not an image at all"),
    ],
    ids=["truncated-png", "psd", "not-an-image"],
)
async def test_a_file_that_is_no_readable_image_gets_a_plain_reason(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, engine: str, name: str, data: bytes  # noqa: F811
) -> None:
    interaction = await run_ocr(emulator, data, name=name, engine=engine)
    original = interaction.original
    assert original is not None
    content = await final(emulator, original, lambda c: "⚠️" in c)
    assert content.startswith("⚠️ ") and "\n" not in content and len(content) < 200
    assert "Traceback" not in content and "Error" not in content
    assert vlm.completions == []  # nothing was sent to the model
    assert_sent_cleanly(emulator, original)

    # the bot is fine afterwards
    vlm.script(Script(text="OPEN", chunk_size=100))
    again = await run_ocr(emulator, text_page(["OPEN"])[0], engine="model")
    assert again.original is not None
    assert code_block(await final(emulator, again.original, lambda c: c.endswith("```"))) == "OPEN"


async def test_deleting_the_reply_mid_transcription_stops_the_model_request(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer  # noqa: F811
) -> None:
    vlm.script(Script(chunks=("Line one\n", "Line two\n", "Line three\n"), gated=True))
    interaction = await run_ocr(emulator, text_page(LINES)[0])
    [request] = await vlm.wait_for_requests(1)
    await vlm.release(1)
    original = interaction.original
    assert original is not None
    await final(emulator, original, lambda c: "Line one" in c)

    await emulator.delete_message(original)
    await vlm.release(1)
    await vlm.wait_for(lambda: request.disconnected)  # the bot cancelled the upstream request
    assert interaction.followups == []  # and posted nothing else


async def test_a_transcription_that_mentions_everyone_pings_nobody(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer  # noqa: F811
) -> None:
    alice = emulator.user("alice")
    text = f"@everyone @here <@{alice.id}> <@&{emulator.world.guilds[emulator.channel('general').guild_id].id}>"
    vlm.script(Script(text=text, chunk_size=100))
    interaction = await run_ocr(emulator, text_page(["hello"])[0])
    assert interaction.original is not None
    content = await final(emulator, interaction.original, lambda c: c.endswith("```"))
    assert code_block(content) == text
    assert_sent_cleanly(emulator, interaction.original)
