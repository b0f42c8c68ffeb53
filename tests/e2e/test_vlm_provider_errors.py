"""Providers that fail inside a 200 stream (an error frame): the answer still arrives when a retry can
fix it, a refusal of the request is not paid for again, and the reason shown is the right one."""

from __future__ import annotations

from bot.app import Glimpse
from bot.vlm.client import REASONS
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
    use_vision,
    warning_line,
)
from tests.e2e.test_describe_faults import FAST, TEXT, a_png, post_image
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer


async def test_error_frame_refusing_the_image_is_not_retried(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script.error_frame(after=0, code="invalid_image", message="Image could not be decoded"))
    vlm.respond_with(lambda request: TEXT)  # what a pointless second attempt would be paid for

    reply = await post_image(emulator, a_png())
    line = warning_line(REASONS["bad_request"])
    await emulator.wait_for_content(reply, lambda text: text == line)
    await vlm.wait_for(lambda: all(r.finished.is_set() for r in vlm.completions))

    assert [(r.status, r.outcome) for r in vlm.completions] == [(200, "error_frame")]
    assert_discord_refused_nothing(emulator)


async def test_server_error_frame_before_the_first_word_is_retried(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await use_vision(glimpse, vlm, **FAST)
    vlm.script(Script.error_frame(after=0, code="server_error"), Script(text=TEXT))

    reply = await post_image(emulator, a_png())
    await emulator.wait_for_content(reply, lambda text: text == TEXT)
    assert [r.outcome for r in vlm.completions] == ["error_frame", "completed"]
    assert_discord_refused_nothing(emulator)


async def test_error_frame_mid_answer_keeps_the_text_and_says_it_was_cut_off(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script(Script.error_frame(after=2, text=TEXT, chunk_size=8))

    reply = await post_image(emulator, a_png())
    line = warning_line(REASONS["cut_off"])
    await emulator.wait_for_content(reply, lambda text: text.endswith(line))
    assert reply.content == f"{TEXT[:16]}\n{line}"
    assert len(vlm.completions) == 1
    assert_discord_refused_nothing(emulator)
