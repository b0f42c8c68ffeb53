"""What people see when the model service or the image fails: one short plain line, partial text kept.

Faults come from the VLM server (real HTTP errors, stalls, dropped connections, broken SSE) and reach
the bot through the real openai client. The bot has no settings for timeouts or backoff, so the
slow faults are tested with a vision client built here (see ``helpers.use_vision``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.app import Glimpse
from bot.images import MAX_INPUT_BYTES
from bot.vlm.client import REASONS
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    PLACEHOLDER,
    emulator_config,
    paced_like_emulator,
    png,
    psd,
    reply_to,
    truncated_png,
    use_vision,
    warning_line,
)
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.vlm import Script, VLMServer

FAST = {"backoff_base": 0.001, "first_token_timeout": 0.5, "idle_timeout": 0.5}
TEXT = "A red bicycle leans against a stone wall."


@dataclass(frozen=True)
class Fault:
    scripts: tuple[Script, ...]
    kind: str  # the VisionError kind whose reason the reply must end with
    attempts: int  # requests the VLM server must see (1 + retries)
    kept: int = 0  # characters of the answer streamed before the fault, which the reply must keep
    vision: dict[str, Any] = field(default_factory=dict)  # options for a replacement vision client


FAULTS = {
    "401 bad key": Fault((Script.error(401),), "auth", 1),
    "404 unknown model": Fault((), "model", 1, vision={"model": "no-such/model"}),
    "500 after retries": Fault((Script.error(500),) * 4, "down", 4, vision=FAST),
    "503 after retries": Fault((Script.error(503, retry_after=0.01),) * 4, "down", 4),
    "stall before the first token": Fault((Script(text=TEXT, stall_before_headers=True),), "timeout", 1, vision=FAST),
    "stall mid-stream": Fault((Script(text=TEXT, chunk_size=8, stall_after=2),), "timeout", 1, 16, FAST),
    "cut mid-stream": Fault((Script(text=TEXT, chunk_size=8, disconnect_after=2),), "cut_off", 1, 16),
    "malformed SSE mid-stream": Fault((Script(text=TEXT, chunk_size=8, malformed_after=3),), "cut_off", 1, 24),
    "malformed SSE from the start": Fault((Script(text=TEXT, malformed_after=0),) * 4, "bad_response", 4, vision=FAST),
    "empty answer": Fault((Script(text=""),), "empty", 1),
}


async def post_image(emulator: DiscordEmulator, *files: tuple[str, bytes, str]) -> Message:
    """bob posts ``files`` in the describe channel; returns the bot's reply."""
    bob, images = emulator.user("bob"), emulator.channel("images")
    posted = await emulator.post_message(bob, images, "", attachments=list(files))
    return await reply_to(emulator, posted)


def a_png() -> tuple[str, bytes, str]:
    return ("photo.png", png(), "image/png")


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_model_fault_shows_one_plain_line_and_keeps_the_partial_text(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, fault: Fault
) -> None:
    if fault.vision:
        await use_vision(glimpse, vlm, **fault.vision)
    vlm.script(*fault.scripts)
    vlm.respond_with(lambda request: TEXT)  # what a further, unexpected attempt would get

    reply = await post_image(emulator, a_png())
    line = warning_line(REASONS[fault.kind])
    await emulator.wait_for_content(reply, lambda text: text.endswith(line))
    await vlm.wait_for(lambda: all(r.finished.is_set() for r in vlm.completions))

    assert len(vlm.completions) == fault.attempts
    partial = TEXT[: fault.kept]
    assert "".join(r.sent_text for r in vlm.completions) == partial
    assert reply.content == (f"{partial}\n{line}" if partial else line)
    assert reply.content.count(warning_line("")) == 1  # exactly one warning line
    assert reply.history[0] == PLACEHOLDER
    assert emulator.bot_messages(emulator.channel("images")) == [reply]


async def test_busy_then_answered_retries_without_showing_an_error(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script.error(429, retry_after=0.01), Script(text=TEXT))

    reply = await post_image(emulator, a_png())
    await emulator.wait_for_content(reply, lambda text: text == TEXT)

    assert [r.status for r in vlm.completions] == [429, 200]
    assert reply.history == [PLACEHOLDER, TEXT]


async def test_answer_cut_at_the_length_limit_gets_a_note(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script(text=TEXT, finish_reason="length"))

    reply = await post_image(emulator, a_png())
    await emulator.wait_for_content(reply, lambda text: text.startswith(TEXT + "\n"))

    text, note = reply.content.split("\n")
    assert text == TEXT
    assert note == "-# (stopped at the length cap)"


@pytest.mark.parametrize(
    ("file", "says"),
    [
        (("broken.png", truncated_png(), "image/png"), "damaged"),
        (("layers.psd", psd(), "image/vnd.adobe.photoshop"), "PSD"),
        (("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(MAX_INPUT_BYTES), "image/png"), "25 MB"),
    ],
    ids=["truncated PNG", "PSD", "over 25 MB"],
)
async def test_unusable_image_gets_a_short_reason_and_no_model_request(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, file: tuple[str, bytes, str], says: str
) -> None:
    reply = await post_image(emulator, file)
    prefix = warning_line(f"Skipped `{file[0]}`: ")
    content = await emulator.wait_for_content(reply, lambda text: text.startswith(prefix))

    reason = content.removeprefix(prefix)
    assert says in reason
    assert "\n" not in content and len(reason) < 200, reason
    assert not any(word in reason for word in ("Traceback", "Error", "PIL", "Exception")), reason
    assert vlm.completions == []
    if len(file[1]) > MAX_INPUT_BYTES:
        assert emulator.cdn.downloads == []  # too big to use: never even downloaded


async def test_unusable_image_beside_a_good_one_is_skipped_with_a_note(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(TEXT)

    reply = await post_image(emulator, ("broken.png", truncated_png(), "image/png"), a_png())
    await emulator.wait_for_content(reply, lambda text: text.startswith(TEXT + "\n"))

    [request] = vlm.completions
    assert [(i.width, i.height) for i in request.images] == [(800, 600)]
    text, note = reply.content.split("\n")
    assert text == TEXT
    assert note.startswith("-# Skipped `broken.png`: ")
