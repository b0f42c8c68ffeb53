"""Shared pieces of the end-to-end tests: generated images, scaled pacing, short timeouts, reply checks.

Every test that uses the ``emulator`` fixture ends with :func:`assert_discord_refused_nothing` (the
fixture runs it at teardown); a test that provokes a refusal on purpose declares it with
``@pytest.mark.discord_refuses((404, 10008), RATE_LIMITED)``.

Discord's channel bucket is 5 sends/edits per 5 s. Tests that need many requests scale it to 5 per
second on both sides: :func:`scaled_emulator_config` for the emulator and :func:`pace_like` for the
bot, whose :class:`~bot.replies.pacing.ChannelPacer` is built in ``setup_hook`` with Discord's defaults and
has no setting, so the test swaps it for one built with the emulator's numbers. A test module
opts in by importing the two fixtures below: ``emulator_config`` overrides conftest's, and the
autouse ``paced_like_emulator`` swaps the running bot's pacer.
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from PIL import Image, ImageFilter

from bot.app import Glimpse
from bot.replies import WARNING, ChannelPacer
from bot.vlm import VisionClient
from tests.fakes.discord import DiscordEmulator, EmulatorConfig, Message, RateLimitConfig
from tests.fakes.vlm import RecordedRequest, VLMServer

PLACEHOLDER = "…"
FENCE = "```"
_REOPEN = re.compile(r"```[^\n`]*\n")


# -- what Discord refused ---------------------------------------------------------------------

Refusal = tuple[int, int | None]  # (HTTP status, Discord's JSON error code; None for a 429, which has none)
RATE_LIMITED: Refusal = (429, None)
UNAUTHORIZED: Refusal = (401, 0)
MISSING_PERMISSIONS: Refusal = (403, 50013)
REFUSALS_MARK = "discord_refuses"


def assert_discord_refused_nothing(emulator: DiscordEmulator, allow: Iterable[Refusal] = ()) -> None:
    """Discord answered no 4xx and no 429, except the ``(status, code)`` refusals in ``allow``.

    Unknown routes count (404, code 0), as does a 401. ``allow`` lists what the test provoked on
    purpose; whether it happened is the test's own assertion.
    """
    allowed = set(allow)
    unexpected = [r for r in emulator.refusals if (r.status, r.error_code) not in allowed]
    assert not unexpected, "Discord refused:\n" + "\n".join(
        f"  {r.method} {r.path} -> {r.status} {r.error_code}: {_error_message(r.response)}" for r in unexpected
    )


def declared_refusals(node: pytest.Item) -> set[Refusal]:
    """The refusals a test declared with ``@pytest.mark.discord_refuses(...)`` (on it, its class or module)."""
    return {refusal for mark in node.iter_markers(REFUSALS_MARK) for refusal in mark.args}


def assert_bot_pinged_nobody(emulator: DiscordEmulator) -> None:
    """Nothing the bot sent or edited would have pinged anyone."""
    messages, bot_id = emulator.world.messages, emulator.bot_user.id
    sent = [r for r in emulator.records.mentions if messages[r.message_id].author.id == bot_id]
    pinging = [r for r in sent if r.pinged_anyone]
    assert pinging == [], [messages[r.message_id].content for r in pinging]


def _error_message(body: Any) -> str:
    return str(body.get("message", body)) if isinstance(body, dict) else repr(body)


# -- images ------------------------------------------------------------------------------------


def png(width: int = 800, height: int = 600, color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def photo_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """A photo-like JPEG (smooth colour with grain): too big to send as it is (base64 > 1 MB)."""
    small = (width // 8, height // 8)
    grain = Image.effect_noise(small, 60).filter(ImageFilter.GaussianBlur(1))
    ramp = Image.linear_gradient("L").resize(small)
    image = Image.merge("RGB", (grain, ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    buffer = io.BytesIO()
    image.resize((width, height), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def truncated_png() -> bytes:
    """A PNG cut off in the middle of its pixel data."""
    data = png(64, 64, "red")
    return data[: len(data) // 2]


def psd() -> bytes:
    """The header of a Photoshop document (1x1 RGB): a format the bot does not open."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 1, 1, 8, 3)
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + b"\x00" * 3


# -- the bot's configuration from a test -------------------------------------------------------


def scaled_emulator_config(per_second: int = 5) -> EmulatorConfig:
    """Discord's limits with one-second windows: the same shape as 5 per 5 s, five times faster."""
    return EmulatorConfig(
        rate_limits=RateLimitConfig(
            channel_limit=per_second,
            channel_window=1.0,
            message_route_limit=per_second,
            message_route_window=1.0,
            webhook_window=1.0,
        )
    )


def pace_like(glimpse: Glimpse, config: EmulatorConfig) -> None:
    """Give the bot a pacer that knows the emulator's (scaled) channel bucket."""
    limits = config.rate_limits
    glimpse.pacer = ChannelPacer(rate=limits.channel_limit, per=limits.channel_window)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return scaled_emulator_config()


@pytest.fixture(autouse=True)
def paced_like_emulator(glimpse: Glimpse, emulator_config: EmulatorConfig) -> None:
    pace_like(glimpse, emulator_config)


async def use_vision(glimpse: Glimpse, vlm: VLMServer, **options: Any) -> VisionClient:
    """Replace the bot's vision client (e.g. with short timeouts) by one on the same VLM server.

    The bot has no settings for timeouts or backoff, so faults that would take seconds with the
    defaults are tested with a client built here; ``model`` may be overridden too. Describe and chat
    look the client up on every request; a service that captured it at start (moderation) keeps the
    old, now closed, one, so tests of such services need another way in.
    """
    options.setdefault("model", glimpse.settings.vlm_model)
    client = VisionClient(api_key=vlm.api_key, base_url=vlm.base_url, **options)
    previous = glimpse.vision
    glimpse.vision = client
    await previous.aclose()
    return client


# -- what the emulator recorded ----------------------------------------------------------------


async def reply_to(emulator: DiscordEmulator, message: Message) -> Message:
    """The bot's reply to ``message`` (its first message referencing it)."""
    channel = emulator.world.channels[message.channel_id]
    return await emulator.wait_for_message(channel, lambda m: m.reference_id == message.id)


def reply_chain(emulator: DiscordEmulator, first: Message) -> list[Message]:
    """``first`` and its continuation messages (each replies to the one before)."""
    channel = emulator.world.channels[first.channel_id]
    chain = [first]
    for message in emulator.bot_messages(channel):
        if message.reference_id == chain[-1].id:
            chain.append(message)
    return chain


def warning_line(reason: str) -> str:
    return f"{WARNING} {reason}"


def assert_grows_into(history: Sequence[str], final: str, *, wrap: tuple[str, str] = ("", "")) -> None:
    """The placeholder first, then texts that only grow, each inside ``wrap``, ending with ``final``."""
    before, after = wrap
    assert history[0] == PLACEHOLDER, history
    assert history[-1] == f"{before}{final}{after}", history
    shown = ""
    for content in history[1:]:
        assert content.startswith(before) and content.endswith(after), content
        inner = content[len(before) : len(content) - len(after)]
        assert final.startswith(inner), (inner, final)
        assert len(inner) >= len(shown), (shown, inner)  # never goes back to older text
        shown = inner


def fences_balanced(content: str) -> bool:
    return content.count(FENCE) % 2 == 0


def rejoin(chunks: Sequence[str], original: str) -> str:
    """Undo the split of ``original`` into ``chunks``: drop the fences the split added, check the rest.

    A chunk that starts inside a code block of ``original`` must begin with a reopening fence; a chunk
    whose end falls inside one may end with an added closing fence. Everything else must be
    ``original`` verbatim, in order. Returns the joined text (to compare with ``original``); raises
    AssertionError when the chunks are not such a split.
    """
    end = _rejoin_from(list(chunks), original, 0)
    if end is None:
        raise AssertionError(f"the messages are not a split of the answer: {[c[:40] for c in chunks]}")
    return original[:end]


def _rejoin_from(chunks: list[str], original: str, position: int) -> int | None:
    """Where the original text ends after ``chunks`` laid from ``position`` (None: they do not fit)."""
    if not chunks:
        return position
    body = chunks[0]
    if original[:position].count(FENCE) % 2:  # the previous chunk ended inside a code block
        reopen = _REOPEN.match(body)
        if reopen is None:
            return None
        body = body[reopen.end() :]
    # The chunk as it is, or without an added closing fence ("```" or "\n```"); try each that fits.
    for inner in dict.fromkeys((body, body.removesuffix(FENCE), body.removesuffix("\n" + FENCE))):
        end = position + len(inner)
        added_close = inner != body
        if not original.startswith(inner, position) or (added_close and not original[:end].count(FENCE) % 2):
            continue
        found = _rejoin_from(chunks[1:], original, end)
        if found is not None:
            return found
    return None


async def release_in_steps(
    vlm: VLMServer,
    emulator: DiscordEmulator,
    message: Message,
    pieces: Sequence[str],
    *,
    wrap: tuple[str, str] = ("", ""),
) -> None:
    """Let a gated stream out one chunk at a time, each time waiting until ``message`` shows it all."""
    shown = ""
    for piece in pieces:
        shown += piece
        await vlm.release(1)
        expected = f"{wrap[0]}{shown}{wrap[1]}"
        await emulator.wait_for_content(message, lambda content, expected=expected: content == expected)


async def release_until_done(vlm: VLMServer, requests: Sequence[RecordedRequest]) -> None:
    """Release chunks one at a time until every gated stream in ``requests`` has ended.

    A stream whose outcome is still "pending" has not forfeited the gate yet, so the permit granted
    here is either taken by a stream or forfeited by one that ends: ``release`` cannot hang.
    """
    while any(request.outcome == "pending" for request in requests):
        await vlm.release(1)


class SettledRequests:
    """Counts model requests whose cost the guard finished settling in the store, so a test can wait
    until one is counted before asking again (the answer is on screen a moment before). Wraps
    ``Store.settle`` and calls through."""

    def __init__(self, glimpse: Glimpse) -> None:
        self.count = 0
        self._changed = asyncio.Event()
        store = glimpse.store
        settle = store.settle

        async def counted(*args: Any, **kwargs: Any) -> None:
            await settle(*args, **kwargs)
            self.count += 1
            self._changed.set()

        store.settle = counted  # type: ignore[method-assign]

    async def wait(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()
