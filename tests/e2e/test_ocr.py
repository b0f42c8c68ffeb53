"""OCR end to end: `/ocr` and "Extract text" with the real bot, the Discord emulator and the VLM server.

Streams are gated (the VLM server lets a chunk out only when the test releases it), so every test
sees the same sequence of states whatever the machine's speed.
"""

from __future__ import annotations

import io
import itertools
import re
import sys
from collections.abc import AsyncIterator, Callable

import pytest
from PIL import Image

from bot.app import Glimpse
from bot.images import MAX_INPUT_BYTES, prepare_text_images
from bot.ocr import LocalOcrEngine
from bot.ocr.core import NO_TEXT_MESSAGE, build_ocr_messages, clean_transcription
from bot.ocr.transcribe import OfflineReader
from bot.replies import ChannelPacer
from bot.replies.textsplit import ZWSP
from tests.e2e.helpers import assert_bot_pinged_nobody
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, Interaction, Message, RateLimitConfig
from tests.fakes.vlm import RecordedRequest, Script, VLMServer
from tests.unit.text_images import character_error_rate, chat_screenshot, document, load_font, sample_lines

FENCE = "```"
needs_offline_engine = pytest.mark.skipif(
    not LocalOcrEngine().available(), reason="the ocr extra (tesserocr + English data) is not installed"
)


# --- a faster Discord: the same rules on a tenth of the clock, so streams take fractions of a second ---

WINDOW = 0.5


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    limits = RateLimitConfig(channel_window=WINDOW, message_route_window=WINDOW, webhook_window=WINDOW)
    return EmulatorConfig(rate_limits=limits)


@pytest.fixture
async def bot(glimpse: Glimpse) -> AsyncIterator[Glimpse]:
    glimpse.pacer = ChannelPacer(rate=5, per=WINDOW, margin=0.05)
    # Retries after a 500 wait milliseconds instead of seconds.
    glimpse.vision.backoff_base, glimpse.vision.backoff_cap = 0.01, 0.02
    yield glimpse


# --- helpers ---------------------------------------------------------------------------------------


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def text_page(lines: list[str], size: int = 30) -> tuple[bytes, str]:
    page = document(lines, name="page", font=load_font(size), width=1000)
    return png(page.image), page.text


def balanced(content: str) -> bool:
    """Discord toggles a code block at every ``` : an even count leaves none open."""
    return content.count(FENCE) % 2 == 0


def code_block(content: str) -> str:
    """The text inside the first code block of a message, unescaped."""
    match = re.search(r"```\n(.*?)\n```", content, re.S)
    assert match, f"no code block in {content!r}"
    return match.group(1).replace(ZWSP, "")


def in_code_block(text: str) -> str:
    """How the bot shows ``text``: in a code block, backtick runs broken by zero-width spaces."""
    return f"{FENCE}\n{text.replace('``', '``' + ZWSP)}\n{FENCE}"


async def run_ocr(emulator: DiscordEmulator, data: bytes, name: str = "page.png", **options: str) -> Interaction:
    alice, channel = emulator.user("alice"), emulator.channel("general")
    interaction = await emulator.run_slash_command(alice, channel, "ocr", {"image": (name, data), **options})
    return await emulator.wait_for_response(interaction)


async def final(emulator: DiscordEmulator, message: Message, done: Callable[[str], bool]) -> str:
    return await emulator.wait_for_content(message, done, timeout=10)


def assert_sent_cleanly(emulator: DiscordEmulator, *messages: Message) -> None:
    """The bot pinged nobody, and every revision of ``messages`` has balanced code fences."""
    assert_bot_pinged_nobody(emulator)
    for message in messages:
        assert all(balanced(content) for content in message.history), message.history


# --- /ocr with the model ---------------------------------------------------------------------------


async def test_ocr_streams_the_verbatim_transcription_into_a_balanced_code_block(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    lines = ["# Release notes", "", "Run it with:", "```bash", "make run", "```", "| a | b |", "Done."]
    vlm.script(Script(chunks=(*(f"{line}\n" for line in lines[:-1]), lines[-1]), gated=True))
    data, _ = text_page(["Release notes", "Run it with: make run"])

    interaction = await run_ocr(emulator, data, language="English", layout="markdown")
    [request] = await vlm.wait_for_requests(1)
    original = interaction.original
    assert original is not None
    # Release one line at a time; each complete line reaches the screen before the next one is sent.
    for count in range(1, len(lines)):
        await vlm.release(1)
        if lines[count - 1]:  # a blank line changes nothing on screen
            so_far = "\n".join(lines[:count])
            await emulator.wait_for_content(original, lambda c, t=so_far: FENCE in c and code_block(c) == t)
    await vlm.release(1)

    text = "\n".join(lines)
    assert await final(emulator, original, lambda content: content == in_code_block(text))
    # The request: the prompt as bot.ocr.core writes it, the image as the OCR policy prepares it, temperature 0.
    expected = build_ocr_messages(prepare_text_images(data), language="English", layout="markdown")
    assert request.body["messages"] == expected
    assert request.body["temperature"] == 0
    [image] = request.images
    assert (image.format, image.width, image.height) == ("PNG", *Image.open(io.BytesIO(data)).size)
    # Every intermediate state was balanced; the text grew in several edits, never shrank.
    history = [content for content in interaction.original_history if FENCE in content]
    assert len(history) >= 4
    assert all(code_block(b).startswith(code_block(a)) for a, b in itertools.pairwise(history))
    assert not interaction.ephemeral
    assert_sent_cleanly(emulator, original)


async def test_a_long_transcription_arrives_as_a_preview_and_the_whole_text_as_a_file(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    body = sample_lines(400, seed=7, words=(3, 8))
    extras = ["Prix : 12,50 € — 漢字 テスト 🙂", "```python", "print('hi')", "```", "\ttabbed line"]
    text = "\n".join(extras + body)
    text = text[:6000].rstrip()
    text += "x" * (6000 - len(text))
    assert len(text) == 6000 and clean_transcription(text) == text
    vlm.script(Script(text=text, chunk_size=400, gated=True))

    interaction = await run_ocr(emulator, text_page(["A long page"])[0], name="long page.png")
    await vlm.wait_for_requests(1)
    await vlm.release(len(Script(text=text, chunk_size=400).pieces()))
    original = interaction.original
    assert original is not None
    content = await final(emulator, original, lambda c: "is attached" in c)

    assert "The full text (6,000 characters) is attached as long_page.txt." in content
    assert content.startswith(FENCE)
    assert code_block(content) in text  # the preview is the start of the text
    uploads = [f for r in emulator.requests for f in r.files if f.filename == "long_page.txt"]
    assert len(uploads) == 1 and uploads[0].data == text.encode("utf-8")
    assert original.revisions[-1].attachments == ("long_page.txt",)
    assert_sent_cleanly(emulator, original)


async def test_a_tall_screenshot_is_read_in_ordered_tiles_and_joined_without_repeats(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    data = png(chat_screenshot(name="tall", width=1080, height=8000, seed=4, font_size=26).image)
    tiles = prepare_text_images(data)
    count = len(tiles)
    assert count >= 5
    # What the model reads in each tile: its own lines plus the two last lines of the tile above.
    lines = sample_lines(count * 4, seed=9, words=(2, 5))
    answers = ["\n".join(lines[max(0, 4 * k - 2) : 4 * k + 4]) for k in range(count)]

    def answer(request: RecordedRequest) -> Script:
        [part] = re.findall(r"part (\d+) of (\d+)", request.prompt)
        assert int(part[1]) == count
        return Script(text=answers[int(part[0]) - 1], chunk_size=12)

    vlm.respond_with(answer)
    interaction = await run_ocr(emulator, data, name="scroll.png")
    original = interaction.original
    assert original is not None
    text = "\n".join(lines)
    assert await final(emulator, original, lambda content: content == in_code_block(text))

    requests = vlm.completions
    assert [re.findall(r"part (\d+) of", r.prompt) for r in requests] == [[str(k)] for k in range(1, count + 1)]
    assert all(r.body["temperature"] == 0 for r in requests)
    for request, tile in zip(requests, tiles, strict=True):
        [image] = request.images  # one image per request, within the provider's advice of two
        assert (image.width, image.height) == (tile.width, tile.height) and image.width == 1080
    assert_sent_cleanly(emulator, original)


async def test_no_readable_text_is_said_plainly(bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    vlm.script(Script(text="NO_TEXT", chunk_size=100, gated=True))
    blank = png(Image.new("RGB", (640, 480), "white"))
    interaction = await run_ocr(emulator, blank)
    await vlm.wait_for_requests(1)
    await vlm.release(1)
    original = interaction.original
    assert original is not None
    assert await final(emulator, original, lambda content: content == NO_TEXT_MESSAGE)
    assert_sent_cleanly(emulator, original)


async def test_an_image_over_the_byte_limit_is_refused_without_being_downloaded(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    huge = b"\x89PNG\r\n\x1a\n" + bytes(MAX_INPUT_BYTES)
    interaction = await run_ocr(emulator, huge, name="huge.png")
    original = interaction.original
    assert original is not None
    content = await final(emulator, original, lambda c: "⚠️" in c)
    assert content == f"⚠️ That file is too large; the limit is {MAX_INPUT_BYTES // 2**20} MB."
    assert emulator.cdn.downloads == [] and vlm.completions == []
    assert_sent_cleanly(emulator, original)


# --- the message menu ------------------------------------------------------------------------------


async def test_extract_text_reads_each_image_of_a_message_under_its_own_header(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script(text="OPEN 9-17", chunk_size=100, gated=True), Script(text="Exit →", chunk_size=100, gated=True))
    bob, alice, channel = emulator.user("bob"), emulator.user("alice"), emulator.channel("general")
    first, second = text_page(["OPEN 9-17"])[0], text_page(["Exit"])[0]
    posted = await emulator.post_message(
        bob, channel, "signs", attachments=[("door.png", first), ("notes.txt", b"not an image"), ("exit.png", second)]
    )

    interaction = await emulator.use_message_command(alice, posted, "Extract text")
    await emulator.wait_for_response(interaction)
    [request] = await vlm.wait_for_requests(1)
    await vlm.release(1)
    original = interaction.original
    assert original is not None
    assert await final(emulator, original, lambda c: c == "-# Image 1 of 2: door.png\n" + in_code_block("OPEN 9-17"))
    await vlm.wait_for_requests(2)  # the second image is read after the first
    await vlm.release(1)
    followup = await emulator.wait_for(lambda: interaction.followups and interaction.followups[0])
    assert await final(emulator, followup, lambda c: c == "-# Image 2 of 2: exit.png\n" + in_code_block("Exit →"))

    assert [len(r.images) for r in vlm.completions] == [1, 1]
    assert request.body["messages"] == build_ocr_messages(prepare_text_images(first))
    assert not interaction.ephemeral
    assert_sent_cleanly(emulator, original, followup)


async def test_extract_text_on_a_message_without_images_is_refused_privately(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, alice, channel = emulator.user("bob"), emulator.user("alice"), emulator.channel("general")
    posted = await emulator.post_message(bob, channel, "just words", attachments=[("a.txt", b"hello")])
    interaction = await emulator.use_message_command(alice, posted, "Extract text")
    await emulator.wait_for_response(interaction)
    assert interaction.ephemeral and interaction.callback_types == [4]
    assert interaction.original is not None and "no images" in interaction.original.content
    assert vlm.completions == []


# --- the offline engine ----------------------------------------------------------------------------

LINES = ["Meeting moved to Friday at noon.", "Bring the quarterly report.", "Room 4B, second floor."]


@needs_offline_engine
async def test_engine_local_reads_a_text_image_offline(bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    data, truth = text_page(LINES)
    interaction = await run_ocr(emulator, data, engine="local")
    original = interaction.original
    assert original is not None
    content = await final(emulator, original, lambda c: "offline OCR engine" in c)

    assert character_error_rate(truth, code_block(content)) < 0.03
    assert content.endswith("-# Read by the offline OCR engine (Tesseract).")
    assert vlm.completions == []  # no tokens spent
    assert_sent_cleanly(emulator, original)


@needs_offline_engine
async def test_no_text_read_offline_says_so_with_the_engine_note_under_it(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    blank = png(Image.new("RGB", (640, 480), "white"))
    interaction = await run_ocr(emulator, blank, engine="local")
    original = interaction.original
    assert original is not None
    content = await final(emulator, original, lambda c: "offline OCR engine" in c)
    assert content == f"{NO_TEXT_MESSAGE}\n-# Read by the offline OCR engine (Tesseract)."
    assert_sent_cleanly(emulator, original)


@needs_offline_engine
async def test_a_failing_model_service_falls_back_to_the_offline_engine(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.respond_with(lambda request: Script.error(500))
    data, truth = text_page(LINES)
    interaction = await run_ocr(emulator, data)
    original = interaction.original
    assert original is not None
    content = await final(emulator, original, lambda c: "offline OCR engine" in c)

    assert len(vlm.completions) == bot.vision.max_retries + 1  # retried, then given up
    assert character_error_rate(truth, code_block(content)) < 0.03
    assert content.endswith(
        "-# Read by the offline OCR engine (Tesseract) instead: The model service is unavailable right now."
    )
    assert_sent_cleanly(emulator, original)


def without_offline_engine(bot: Glimpse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tesserocr", None)  # as if the ocr extra were not installed
    cog = bot.get_cog("Ocr")
    assert cog is not None
    monkeypatch.setattr(cog, "offline", OfflineReader(LocalOcrEngine()))


async def test_engine_local_without_the_extra_says_how_to_install_it(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_offline_engine(bot, monkeypatch)
    interaction = await run_ocr(emulator, text_page(LINES)[0], engine="local")
    assert interaction.ephemeral and interaction.callback_types == [4]
    assert interaction.original is not None
    assert "pip install '.[ocr]'" in interaction.original.content
    assert vlm.completions == []


async def test_without_the_offline_engine_a_service_failure_is_reported(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_offline_engine(bot, monkeypatch)
    vlm.respond_with(lambda request: Script.error(503))
    interaction = await run_ocr(emulator, text_page(LINES)[0])
    original = interaction.original
    assert original is not None
    content = await final(emulator, original, lambda c: "⚠️" in c)
    assert content == "⚠️ The model service is unavailable right now."
    assert_sent_cleanly(emulator, original)


async def test_text_already_shown_is_kept_when_the_stream_breaks_and_no_engine_takes_over(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script(chunks=("Line one\n", "Line two\n", "Line thr"), disconnect_after=2, gated=True))
    interaction = await run_ocr(emulator, text_page(LINES)[0])
    await vlm.wait_for_requests(1)
    await vlm.release(2)
    original = interaction.original
    assert original is not None
    content = await final(emulator, original, lambda c: "⚠️" in c)
    assert content == in_code_block("Line one\nLine two") + "\n⚠️ The answer was cut off before it was complete."
    assert len(vlm.completions) == 1  # nothing retried once text was out, and no second reading
    assert_sent_cleanly(emulator, original)


async def test_a_spoilered_image_gets_a_spoilered_transcription(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script(text="The butler did it", chunk_size=100))
    bob, alice, channel = emulator.user("bob"), emulator.user("alice"), emulator.channel("general")
    posted = await emulator.post_message(bob, channel, "", attachments=[("SPOILER_ending.png", text_page(LINES)[0])])
    interaction = await emulator.use_message_command(alice, posted, "Extract text")
    await emulator.wait_for_response(interaction)
    original = interaction.original
    assert original is not None
    assert await final(emulator, original, lambda c: c == "||The butler did it||")


async def test_extract_text_reads_at_most_four_images_and_says_so(
    bot: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.respond_with(lambda request: Script(text="Sign", chunk_size=100))
    bob, alice, channel = emulator.user("bob"), emulator.user("alice"), emulator.channel("general")
    page = text_page(["Sign"])[0]
    posted = await emulator.post_message(bob, channel, "", attachments=[(f"{n}.png", page) for n in range(5)])
    interaction = await emulator.use_message_command(alice, posted, "Extract text")
    last = await emulator.wait_for(lambda: len(interaction.followups) == 3 and interaction.followups[-1])
    content = await final(emulator, last, lambda c: "-# I read" in c)

    assert content == "-# Image 4 of 4: 3.png\n" + in_code_block("Sign") + "\n-# I read the first 4 of 5 images."
    assert len(vlm.completions) == 4
    assert interaction.original is not None
    assert_sent_cleanly(emulator, interaction.original, *interaction.followups)
