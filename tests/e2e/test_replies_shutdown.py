"""Closing the bot while a live reply streams: the reply's editor ends quietly, nothing is left unretrieved."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

import bot.app
from bot.app import Glimpse
from bot.replies import ChannelPacer
from tests.e2e.helpers import RATE_LIMITED, png, reply_to
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, RateLimitConfig
from tests.fakes.vlm import Script, VLMServer

WINDOW = 3.0


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Discord's shared channel bucket (5 writes) over a few seconds; the visible route bucket out of the way."""
    return EmulatorConfig(rate_limits=RateLimitConfig(channel_window=WINDOW, message_route_limit=50))


def editors() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t.get_name() == "live-reply-editor" and not t.done()}


@pytest.mark.filterwarnings("ignore:coroutine 'Client._run_event' was never awaited:RuntimeWarning")  # discord.py's own
@pytest.mark.discord_refuses(RATE_LIMITED)
async def test_closing_the_bot_while_an_edit_waits_out_a_429_ends_the_editor_quietly(
    glimpse: Glimpse,
    emulator: DiscordEmulator,
    vlm: VLMServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(bot.app, "SHUTDOWN_GRACE_SECONDS", 0.1)  # cancel the answer at once
    # A bot that paces more loosely than Discord limits: its sixth write draws a 429 that discord.py
    # sits out inside the request, so that edit is still in flight when the bot closes.
    glimpse.pacer = ChannelPacer(rate=50, per=1.0)
    pieces = tuple(f"word{n} " for n in range(10))
    vlm.script(Script(chunks=pieces, gated=True))
    posted = await emulator.post_message(
        emulator.user("bob"), emulator.channel("images"), "", attachments=[("a.png", png())]
    )
    reply = await reply_to(emulator, posted)
    await vlm.wait_for_requests(1)
    shown = ""
    for piece in pieces[:4]:  # the placeholder and four edits: the channel's five writes
        shown += piece
        await vlm.release(1)
        await emulator.wait_for_content(reply, lambda text, shown=shown: text == shown)
    await vlm.release(1)
    await emulator.wait_for(lambda: emulator.rate_limits != [])
    running = editors()
    assert len(running) == 1

    await glimpse.close()
    await asyncio.wait(running, timeout=2 * WINDOW)
    assert all(task.done() for task in running)
    del running
    gc.collect()  # an unretrieved task exception is reported when its task is collected

    # discord.py's own tasks may complain too when a bot closes this soon after connecting: only ours count.
    unretrieved = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert [r.getMessage() for r in unretrieved if "live-reply" in r.getMessage()] == []
    ours = [r for r in caplog.records if r.name == "bot.replies.live"]
    assert [r.getMessage() for r in ours if r.levelno >= logging.WARNING] == []
    assert any("no connection to Discord" in r.getMessage() for r in ours)  # the editor did meet the closed session
