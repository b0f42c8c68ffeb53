"""`METRICS_PORT`: `GET /healthz` and Prometheus `GET /metrics`, read over HTTP from the running bot.

The bot's store is a private redis-server, stopped in the last test: `/healthz` then answers 503 and
says why, while `/metrics` keeps answering.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Glimpse
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import assert_discord_refused_nothing, png
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer
from tests.store.conftest import free_port, redis_server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def settings_env(
    emulator: DiscordEmulator,
    vlm: VLMServer,
    private_redis: tuple[str, subprocess.Popen[bytes]],
    metrics_port: int,
) -> dict[str, str]:
    return bot_environment(emulator, vlm, private_redis[0], METRICS_PORT=str(metrics_port))


async def get(port: int, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, response.headers["Content-Type"], await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_healthz_says_which_shards_and_that_all_is_well(glimpse: Glimpse, metrics_port: int) -> None:
    status, content_type, body = await get(metrics_port, "/healthz")
    assert (status, content_type) == (200, "application/json; charset=utf-8")
    assert body == '{"status": "ok", "shards": "shard 0 of 1", "problems": []}'
    assert glimpse.health_server is not None and glimpse.health_server.host == "127.0.0.1"  # METRICS_HOST's default


async def test_metrics_count_a_described_image(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, metrics_port: int
) -> None:
    vlm.script(Script(text="A teal rectangle on its own.", chunk_size=6, delay=0.05))
    images = emulator.channel("images")
    posted = await emulator.post_message(emulator.user("bob"), images, "", attachments=[("teal.png", png())])
    reply = await emulator.wait_for_message(images, after=posted)
    await emulator.wait_for_content(reply, lambda text: text == "A teal rectangle on its own.")
    [request] = vlm.completions
    await request.finished.wait()

    status, content_type, text = await get(metrics_port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    found = samples(text)
    describe = (("feature", "describe"),)
    assert found[("glimpse_model_requests_total", (("feature", "describe"), ("outcome", "ok")))] == 1
    assert request.usage is not None
    prompt = (("feature", "describe"), ("kind", "prompt"))
    assert found[("glimpse_model_tokens_total", prompt)] == request.usage.prompt_tokens
    assert found[("glimpse_model_first_token_seconds_count", describe)] == 1
    assert found[("glimpse_model_answer_seconds_count", describe)] == 1
    sends = len(emulator.records.requests_to("POST", "/channels/{channel_id}/messages"))
    edits = len(emulator.records.requests_to("PATCH", "/channels/{channel_id}/messages/{message_id}"))
    assert found[("glimpse_discord_requests_total", (("method", "POST"), ("status", "200")))] >= sends
    assert found[("glimpse_discord_requests_total", (("method", "PATCH"), ("status", "200")))] == edits
    assert found[("glimpse_reply_messages_sent_and_edits_count", ())] == 1
    assert found[("glimpse_reply_messages_sent_and_edits_sum", ())] == len(reply.history)
    for resource in ("download", "image_worker", "model_slot"):
        assert found[("glimpse_wait_seconds_count", (("resource", resource),))] >= 1, resource
    assert ("glimpse_gateway_latency_seconds", (("shard", "0"),)) in found
    assert not any(name == "glimpse_discord_rate_limited_total" for name, _ in found)
    assert_discord_refused_nothing(emulator)


async def test_healthz_answers_503_with_the_reason_while_the_store_is_down(
    glimpse: Glimpse, metrics_port: int, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    _, server = private_redis
    server.terminate()
    server.wait(timeout=10)

    status, _, body = await get(metrics_port, "/healthz")
    assert status == 503
    assert body.startswith('{"status": "unavailable", "shards": "shard 0 of 1", "problems": ["store unavailable:')
    status, _, _ = await get(metrics_port, "/metrics")
    assert status == 200
