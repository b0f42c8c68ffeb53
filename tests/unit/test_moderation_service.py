"""ModerationService against the fake VLM server (127.0.0.1) and a real SQLite store; stats summaries."""

from __future__ import annotations

import asyncio
import io
import json
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bot.guard import Guard, Limits, Purpose
from bot.images import ImageWorker
from bot.moderation import Category, ModerationService, ModerationSettings
from bot.moderation.stats import format_summary, summarize
from bot.store import AuditRecord, Store, open_store
from bot.vlm import VisionClient
from tests.fakes.attachment import FakeAttachment
from tests.fakes.vlm import Script, VLMServer

GUILD = 42
FLAGGED = json.dumps({"flagged": True, "categories": ["spam"], "severity": 1, "reason": "An ad.", "rule": None})
CLEAN = json.dumps({"flagged": False, "categories": [], "severity": 0, "reason": "A landscape.", "rule": None})
SETTINGS = ModerationSettings(watch_all_channels=True)


def picture(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (600, 400), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(10):
        x, y = rng.randrange(600), rng.randrange(400)
        draw.ellipse((x, y, x + rng.randrange(30, 200), y + rng.randrange(30, 200)), fill=rng.randrange(256**3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def posted(seed: int) -> FakeAttachment:
    return FakeAttachment.of(picture(seed))


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    await opened.close()


@pytest.fixture
async def service(vlm: VLMServer, store: Store) -> AsyncIterator[ModerationService]:
    vision = VisionClient(api_key=vlm.api_key, base_url=vlm.base_url, model=vlm.model, max_retries=0)
    worker = ImageWorker()
    guard = Guard(store, Limits(), max_tokens={purpose: 400 for purpose in Purpose})
    yield ModerationService(store=store, vision=vision, guard=guard, images=worker, model_lane=1)
    worker.close()
    await vision.aclose()


async def test_a_check_sends_one_low_detail_json_request_and_caches_the_verdict(
    service: ModerationService, vlm: VLMServer
) -> None:
    vlm.script(FLAGGED)
    first = await service.check_attachment(GUILD, SETTINGS, posted(1))
    again = await service.check_attachment(GUILD, SETTINGS, posted(1))
    assert first.verdict.flagged and first.verdict.categories == (Category.SPAM,) and not first.cached
    assert again.cached and again.verdict == first.verdict and again.prompt_tokens is None
    [request] = vlm.completions
    assert request.body["response_format"] == {"type": "json_object"} and request.body["temperature"] == 0
    assert request.body["messages"][1]["content"][1]["image_url"]["detail"] == "low"
    assert first.prompt_tokens == request.usage.prompt_tokens


async def test_other_guilds_and_changed_rules_do_not_share_verdicts(service: ModerationService, vlm: VLMServer) -> None:
    vlm.respond_with(lambda _: CLEAN)
    await service.check_attachment(GUILD, SETTINGS, posted(2))
    assert not (await service.check_attachment(GUILD + 1, SETTINGS, posted(2))).cached
    assert not (await service.check_attachment(GUILD, SETTINGS.replace(rules="No ads."), posted(2))).cached
    assert len(vlm.completions) == 3


async def test_model_lane_bounds_requests_and_copies_in_flight_share_one(
    service: ModerationService, vlm: VLMServer
) -> None:
    vlm.respond_with(lambda _: Script(text=CLEAN, gated=True, chunk_size=len(CLEAN)))
    tasks = [asyncio.create_task(service.check_attachment(GUILD, SETTINGS, posted(seed))) for seed in (3, 4, 3, 3)]
    await vlm.wait_for_requests(1)
    await asyncio.sleep(0.05)  # give a second request the chance to start if the lane let it
    assert len(vlm.completions) == 1  # model_lane=1
    await vlm.release(1)
    await vlm.wait_for_requests(2)
    await vlm.release(1)
    results = await asyncio.gather(*tasks)
    assert len(vlm.completions) == 2  # the copies of picture 3 waited for one verdict
    threes = [results[0], results[2], results[3]]  # whichever copy was prepared first asked the model
    assert sorted(r.cached for r in threes) == [False, True, True] and not results[1].cached


async def test_provider_without_json_mode_is_asked_again_without_it(service: ModerationService, vlm: VLMServer) -> None:
    vlm.script(Script.error(400, "response_format is not supported"), FLAGGED, FLAGGED)
    result = await service.check_attachment(GUILD, SETTINGS, posted(5))
    assert result.verdict.flagged
    first, second = vlm.completions
    assert "response_format" in first.body and "response_format" not in second.body
    await service.check_attachment(GUILD, SETTINGS, posted(6))
    assert "response_format" not in vlm.completions[2].body  # remembered


@pytest.mark.parametrize(
    ("script", "why"),
    [
        (Script(text=FLAGGED, finish_reason="length"), "cut off"),
        (Script.error(503), "model service failed"),
        ('{"flagged": true}', "missing keys"),
    ],
)
async def test_unusable_answers_need_review_and_are_not_cached(
    service: ModerationService, vlm: VLMServer, script: Script | str, why: str
) -> None:
    vlm.script(script, FLAGGED)
    result = await service.check_attachment(GUILD, SETTINGS, posted(7))
    assert result.verdict.requires_review and why in (result.verdict.review_reason or "")
    assert not (await service.check_attachment(GUILD, SETTINGS, posted(7))).cached


async def test_unreadable_image_needs_review_without_a_request(service: ModerationService, vlm: VLMServer) -> None:
    result = await service.check_attachment(GUILD, SETTINGS, FakeAttachment.of(b"not an image at all"))
    assert result.verdict.requires_review and result.image is None and vlm.completions == []


async def test_settings_round_trip_and_a_broken_record_reads_as_unset(service: ModerationService, store: Store) -> None:
    assert await service.settings(GUILD) is None
    settings = SETTINGS.replace(rules="Be kind.", mod_log_channel_id=123)
    assert await service.save_settings(GUILD, lambda _: settings, actor_id=1) == settings
    assert await service.settings(GUILD) == settings
    assert await service.versioned_settings(GUILD) == (settings, 1)
    await store.set_guild_settings(GUILD, "moderation", {"actions": "delete everything"})
    assert await service.settings(GUILD) is None


async def test_audit_records_feed_the_stats(service: ModerationService, vlm: VLMServer) -> None:
    vlm.script(FLAGGED, "garbage")
    flagged = await service.check_attachment(GUILD, SETTINGS, posted(8))
    cached = await service.check_attachment(GUILD, SETTINGS, posted(8))
    review = await service.check_attachment(GUILD, SETTINGS, posted(9))
    ids = {"channel_id": 1, "message_id": 2, "user_id": 3}
    for result in (flagged, cached, review):
        await service.record_verdict(GUILD, result, **ids)
    await service.record_verdict(GUILD, flagged, kind="check", actor_id=9, **ids)
    await service.record_action(GUILD, "delete", actor_id=None, **ids)
    await service.record_action(GUILD, "timeout", actor_id=9, **ids)
    await service.record_action(GUILD, "delete", actor_id=None, ok=False, **ids)
    summary = summarize((await service.stats(GUILD, [7], time.time()))[7])
    assert (summary.checked, summary.from_cache, summary.flagged, summary.needs_review) == (3, 1, 2, 1)
    assert summary.categories == {"spam": 2} and summary.manual_checks == 1
    assert summary.by_bot == {"delete": 1} and summary.by_moderators == {"timeout": 1}
    assert summary.failures == {"delete": 1}
    text = format_summary(7, summary)
    assert "Images checked: **3** (1 answered from the cache)" in text and "Spam 2" in text


async def test_stats_window_excludes_older_records(service: ModerationService) -> None:
    now = time.time()
    old = AuditRecord(kind="verdict", category="scam", created_at=now - 10 * 86400, detail={"categories": ["scam"]})
    new = AuditRecord(kind="verdict", category="none", created_at=now - 86400)
    for record in (old, new):
        await service.store.add_audit(GUILD, record)
    tallies = await service.stats(GUILD, [7, 30], now)
    week, month = summarize(tallies[7]), summarize(tallies[30])
    assert week.checked == 1 and week.flagged == 0 and not week.categories
    assert month.checked == 2 and month.categories == {"scam": 1}
