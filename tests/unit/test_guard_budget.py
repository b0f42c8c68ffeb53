"""The guard against a real store and the fake VLM server: admit, reserve, settle, release."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.guard import (
    Actor,
    Admission,
    Guard,
    LimitReached,
    Limits,
    MeteredStream,
    MeteredVision,
    Purpose,
    Refusal,
    Scope,
    Spent,
    estimate_prompt,
)
from bot.store import Store, UsageRow, open_store
from bot.vlm import VisionClient, VisionError
from tests.fakes.vlm import RecordedRequest, Script, VLMServer

GUILD, USER = 10, 20
MEMBER = Actor(Purpose.CHAT, user_id=USER, guild_id=GUILD)
MAX_TOKENS = {feature: 100 for feature in Purpose}
LATE = dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.UTC).timestamp()
MESSAGES = [{"role": "user", "content": "What is in the picture?"}]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    await opened.close()


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


@pytest.fixture
async def vision(vlm: VLMServer) -> AsyncIterator[VisionClient]:
    client = VisionClient(api_key=vlm.api_key, base_url=vlm.base_url, model=vlm.model, max_retries=0)
    yield client
    await client.aclose()


def guard(store: Store, clock: Clock, **limits: int) -> Guard:
    return Guard(store, Limits(**limits), max_tokens=MAX_TOKENS, clock=clock)


async def collect(stream: AsyncIterator[str]) -> str:
    return "".join([delta async for delta in stream])


async def admitted(g: Guard, actor: Actor = MEMBER) -> Admission:
    admission = await g.admit(actor)
    assert isinstance(admission, Admission), admission
    return admission


async def test_a_used_up_budget_refuses_until_the_utc_day_ends(store: Store) -> None:
    clock = Clock(LATE)
    g = guard(store, clock, user_daily=1000)
    reservation = await (await admitted(g)).reserve(1000)
    assert not isinstance(reservation, Refusal)
    refusal = await g.admit(MEMBER)
    assert isinstance(refusal, Refusal) and refusal.scope is Scope.MEMBER and refusal.limit == 1000
    assert refusal.resets_at == LATE + 60  # midnight UTC
    clock.now = LATE + 61
    await admitted(g)  # a new day, a new budget


async def test_a_reservation_its_process_never_settled_is_released_after_the_lease(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(LATE - 3600)
    g = Guard(store, Limits(user_daily=1000), max_tokens=MAX_TOKENS, clock=clock, lease=300)
    stuck = await (await admitted(g)).reserve(1000)  # its stream hangs (or its process died)
    assert not isinstance(stuck, Refusal)
    clock.now += 299
    assert isinstance(await g.admit(MEMBER), Refusal)
    clock.now += 1
    late = await (await admitted(g)).reserve(900)  # the lease lapsed: the budget is free again
    assert not isinstance(late, Refusal)

    await stuck.settle(Spent(60, 40))  # it ends after all: its spend counts, its lapsed hold is not taken twice
    assert await store.meter_levels("2026-12-01", [f"member:{GUILD}:{USER}"]) == {f"member:{GUILD}:{USER}": 1000}
    assert "settled after its reservation's lease lapsed (300 s)" in caplog.text
    await late.settle(None)
    assert await store.meter_levels("2026-12-01", [f"member:{GUILD}:{USER}"]) == {f"member:{GUILD}:{USER}": 100}


async def test_the_rate_limit_counts_requests_per_minute_across_features(store: Store) -> None:
    clock = Clock(LATE - 3600)
    g = guard(store, clock, rate_user_per_minute=2)
    await admitted(g, MEMBER)
    await admitted(g, Actor(Purpose.OCR, user_id=USER, guild_id=GUILD + 1))  # another feature, another server
    refusal = await g.admit(Actor(Purpose.DESCRIBE, user_id=USER))
    assert isinstance(refusal, Refusal) and refusal.scope is Scope.RATE and refusal.resets_at == clock.now + 60
    await admitted(g, Actor(Purpose.ALT_TEXT, user_id=USER, guild_id=GUILD))  # automatic: no rate slot
    clock.now += 60
    await admitted(g)


async def test_a_request_that_does_not_fit_says_how_much_is_left(store: Store) -> None:
    g = guard(store, Clock(LATE), guild_daily=1000)
    first = await admitted(g)
    assert not isinstance(await first.reserve(700), Refusal)
    refusal = await first.reserve(400)
    assert isinstance(refusal, Refusal) and (refusal.scope, refusal.left) == (Scope.SERVER, 300)


async def test_a_stream_reserves_its_estimate_and_max_tokens_and_settles_with_the_providers_usage(
    store: Store, vlm: VLMServer, vision: VisionClient
) -> None:
    g = guard(store, Clock(LATE))
    vlm.script(Script(text="A cat on a mat.", gated=True))
    model = MeteredVision(await admitted(g), vision)
    stream = model.stream(MESSAGES, estimate=estimate_prompt(MESSAGES))
    reading = asyncio.create_task(collect(stream))
    [request] = await vlm.wait_for_requests(1)  # sent: the reservation is held while it streams
    assert request.body["max_tokens"] == 100
    assert await store.meter_levels("2026-12-01", ["member:10:20"]) == {"member:10:20": estimate_prompt(MESSAGES) + 100}
    while request.outcome == "pending":
        await vlm.release(1)
    assert await reading == "A cat on a mat."
    await stream.aclose()  # as every reader does: the settlement, started as the stream ended, is done
    usage = request.usage
    assert usage is not None
    spent = usage.prompt_tokens + usage.completion_tokens
    assert await store.meter_levels("2026-12-01", ["member:10:20", "guild:10"]) == {
        "member:10:20": spent,
        "guild:10": spent,
    }
    [row] = await store.usage(GUILD, "2026-12-01", "2026-12-01")
    assert (row.user_id, row.feature, row.prompt_tokens, row.completion_tokens, row.requests) == (
        USER, "chat", usage.prompt_tokens, usage.completion_tokens, 1,
    )


async def test_a_failed_request_is_released_and_a_refused_one_is_never_sent(
    store: Store, vlm: VLMServer, vision: VisionClient
) -> None:
    g = guard(store, Clock(LATE), user_daily=1000)
    vlm.script(Script.error(500))
    failing = MeteredVision(await admitted(g), vision).stream(MESSAGES, estimate=10)
    with pytest.raises(VisionError):
        await anext(failing)
    assert await store.meter_levels("2026-12-01", ["member:10:20"]) == {"member:10:20": 0}
    too_big = MeteredVision(await admitted(g), vision).stream(MESSAGES, estimate=901)
    with pytest.raises(LimitReached) as refused:
        await anext(too_big)
    assert refused.value.refusal.left == 1000 and "1,000 tokens left" in refused.value.reason
    assert len(vlm.completions) == 1  # only the failing one reached the model


def test_the_estimate_counts_texts_by_the_planners_rule_and_images_by_their_tokens() -> None:
    class Image:
        tokens = 342

    messages = [
        {"role": "system", "content": "x" * 40},
        {"role": "user", "content": [{"type": "text", "text": "y" * 9}, {"type": "image_url", "image_url": {}}]},
    ]
    assert estimate_prompt(messages, [Image()]) == (4 + 10) + (4 + 3) + 342


async def test_while_the_store_is_down_the_limits_hold_in_this_process(tmp_path: Path) -> None:
    broken = await open_store(f"sqlite:///{tmp_path / 'gone.db'}")
    await broken.close()  # every call now fails, as in an outage
    g = guard(broken, Clock(LATE), user_daily=1000, rate_user_per_minute=5)
    reservation = await (await admitted(g)).reserve(1000)
    assert not isinstance(reservation, Refusal)
    refusal = await g.admit(MEMBER)
    assert isinstance(refusal, Refusal) and refusal.scope is Scope.MEMBER
    await reservation.settle(None)  # released where it was reserved
    await admitted(g)
    assert await g.once_a_day("notice") and not await g.once_a_day("notice")


class Outage:
    """A real store whose every call fails while ``down`` (as during a Redis restart or a locked file)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False

    def __getattr__(self, name: str) -> object:
        method = getattr(self.store, name)

        async def call(*args: object, **kwargs: object) -> object:
            if self.down:
                raise ConnectionError("store down")
            return await method(*args, **kwargs)

        return call


async def test_usage_counted_while_the_store_was_down_is_carried_into_it_when_it_answers(store: Store) -> None:
    outage = Outage(store)
    g = guard(outage, Clock(LATE), user_daily=10_000)  # type: ignore[arg-type]
    outage.down = True
    await (await (await admitted(g)).reserve(1000)).settle(Spent(300, 200))  # type: ignore[union-attr]
    streaming = await (await admitted(g)).reserve(1000)  # still streaming when the store is back
    assert not isinstance(streaming, Refusal)
    outage.down = False
    assert await store.usage(GUILD, "2026-12-01", "2026-12-01") == []
    await streaming.settle(Spent(10, 5))  # where it was reserved: this process's counters

    await admitted(g)  # the store answers again: what was counted here is carried into it
    outage.down = True  # ...and fails once more before the carrying starts: nothing is lost
    assert g.carrying is not None
    await g.carrying
    outage.down = False
    assert await store.usage(GUILD, "2026-12-01", "2026-12-01") == []
    await admitted(g)
    assert g.carrying is not None
    await g.carrying
    assert await store.usage(GUILD, "2026-12-01", "2026-12-01") == [
        UsageRow("2026-12-01", GUILD, USER, "chat", prompt_tokens=310, completion_tokens=205, requests=2)
    ]
    levels = await store.meter_levels("2026-12-01", ["member:10:20", "guild:10"])
    assert levels == {"member:10:20": 515, "guild:10": 515}  # spent, no reservation left behind
    await admitted(g)
    assert g.carrying is None  # carried once


async def test_an_admission_does_not_wait_long_for_a_slow_store(store: Store) -> None:
    """A command admits before its first response: a store that does not answer is given up on."""

    class Stalled:
        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

        async def admit(self, *args: object, **kwargs: object) -> None:
            await asyncio.Event().wait()  # never answers
            raise AssertionError

    g = guard(Stalled(), Clock(LATE), rate_user_per_minute=1)  # type: ignore[arg-type]
    await admitted(g)  # counted in this process instead
    refusal = await g.admit(MEMBER)
    assert isinstance(refusal, Refusal) and refusal.scope is Scope.RATE


@dataclass
class LongAnswer:
    """A guarded stream of four gated chunks from the fake VLM server, reserving 900 of a member's
    1,000 tokens on a lease of 300 s, whose first text came."""

    clock: Clock
    guard: Guard
    stream: MeteredStream
    request: RecordedRequest
    vlm: VLMServer

    @classmethod
    async def start(cls, store: Store, vlm: VLMServer, vision: VisionClient) -> LongAnswer:
        clock = Clock(LATE - 3600)
        g = Guard(store, Limits(user_daily=1000), max_tokens=MAX_TOKENS, clock=clock, lease=300)
        vlm.script(Script(chunks=("A cat ", "on a ", "mat, ", "asleep."), gated=True))
        stream = MeteredVision(await admitted(g), vision).stream(MESSAGES, estimate=800)
        reading = asyncio.create_task(anext(stream))
        [request] = await vlm.wait_for_requests(1)
        await vlm.release(1)
        assert await reading == "A cat "
        return cls(clock, g, stream, request, vlm)

    async def next(self) -> str:
        """The stream's next text, once the server lets the next gated chunk out."""
        reading = asyncio.create_task(anext(self.stream))
        await self.vlm.release(1)
        return await reading

    async def rest(self) -> str:
        """The rest of the text (its end starts the settlement)."""
        reading = asyncio.create_task(collect(self.stream))
        while self.request.outcome == "pending":
            await self.vlm.release(1)
        return await reading

    async def close(self) -> int:
        """Close the stream, as every reader does (its settlement is done then); the tokens it spent."""
        await self.stream.aclose()
        assert self.request.usage is not None
        return self.request.usage.prompt_tokens + self.request.usage.completion_tokens


async def test_a_stream_longer_than_half_a_lease_extends_it_and_keeps_its_tokens(
    store: Store, vlm: VLMServer, vision: VisionClient, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await LongAnswer.start(store, vlm, vision)
    answer.clock.now += 149
    assert await answer.next() == "on a "  # not half a lease yet
    answer.clock.now += 1
    assert await answer.next() == "mat, "  # half a lease: extended to 300 s from now
    answer.clock.now += 150  # where the lease it was granted ends
    # The sweep this reservation makes (it would not fit beside the stream's 900) frees nothing.
    refusal = await (await admitted(answer.guard)).reserve(101)
    assert isinstance(refusal, Refusal) and refusal.left == 100

    assert await answer.rest() == "asleep."
    spent = await answer.close()
    assert await store.meter_levels("2026-12-01", ["member:10:20"]) == {"member:10:20": spent}
    assert "lease" not in caplog.text  # settled while its lease still held its tokens


async def test_a_lease_the_store_could_not_extend_is_tried_again_and_the_answer_goes_on(
    store: Store, vlm: VLMServer, vision: VisionClient, caplog: pytest.LogCaptureFixture
) -> None:
    outage = Outage(store)
    answer = await LongAnswer.start(outage, vlm, vision)  # type: ignore[arg-type]
    outage.down = True
    answer.clock.now += 150
    assert await answer.next() == "on a "  # the extension failed: logged, and the text goes on
    assert "Could not extend a reservation's lease (ConnectionError('store down'))" in caplog.text
    outage.down = False
    answer.clock.now += 75  # a quarter lease later, still within the first lease: extended now
    assert await answer.next() == "mat, "
    answer.clock.now += 75
    assert isinstance(await (await admitted(answer.guard)).reserve(101), Refusal)  # held past the first lease's end
    assert await answer.rest() == "asleep."
    await answer.close()
    assert "settled after its reservation's lease lapsed" not in caplog.text


async def test_a_stream_that_outlived_its_lease_warns_once_and_counts_its_spend_once(
    store: Store, vlm: VLMServer, vision: VisionClient, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await LongAnswer.start(store, vlm, vision)
    answer.clock.now += 300  # no chunk for a whole lease (a stalled loop): another request's sweep frees it
    other = await (await admitted(answer.guard)).reserve(500)
    assert not isinstance(other, Refusal)
    assert await answer.next() == "on a "  # too late to extend
    assert await answer.rest() == "mat, asleep."
    spent = await answer.close()
    assert await store.meter_levels("2026-12-01", ["member:10:20"]) == {"member:10:20": 500 + spent}
    warnings = [r.getMessage() for r in caplog.records if "lease" in r.getMessage()]
    assert len(warnings) == 1 and "outlived its reservation's lease (300 s)" in warnings[0]


async def test_a_slow_extension_does_not_hold_back_the_answer_and_is_settled_as_extended(
    store: Store, vlm: VLMServer, vision: VisionClient, caplog: pytest.LogCaptureFixture
) -> None:
    answered = asyncio.Event()

    class Slow:
        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

        async def extend_lease(self, *args: Any) -> bool:
            await answered.wait()  # the store takes its time
            return await store.extend_lease(*args)

    answer = await LongAnswer.start(Slow(), vlm, vision)  # type: ignore[arg-type]
    answer.clock.now += 150
    async with asyncio.timeout(10):  # a guard against a hang: the text comes without the store's answer
        assert await answer.next() == "on a "
    assert await answer.next() == "mat, "  # one extension at a time: this one waits for none
    assert await answer.rest() == "asleep."  # the settlement starts: it waits for the extension...
    answered.set()
    spent = await answer.close()  # ...and settles the lease the extension left
    assert await store.meter_levels("2026-12-01", ["member:10:20"]) == {"member:10:20": spent}
    assert "lease" not in caplog.text
