"""Reserve-and-check is one atomic step: twenty /ask at once against a budget that fits five send at
most five model requests, with the SQLite store and with Redis; the rest say which limit refused them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import Glimpse
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
    release_until_done,
    warning_line,
)
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import Script, VLMServer
from tests.store.conftest import redis_server

MAX_TOKENS = 1000
BUDGET = 5 * MAX_TOKENS + 800  # five reservations (each max_tokens + a prompt of ~100) fit, six do not
ASKS = 20


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _):
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def settings_env(
    request: pytest.FixtureRequest, emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path
) -> dict[str, str]:
    if request.param == "sqlite":
        store_url = f"sqlite:///{tmp_path / 'glimpse.db'}"
    else:
        import redis

        store_url = request.getfixturevalue("redis_url")
        with redis.Redis.from_url(store_url) as client:
            client.flushdb()
    return bot_environment(
        emulator,
        vlm,
        store_url,
        BUDGET_USER_DAILY_TOKENS=str(BUDGET),
        CHAT_MAX_TOKENS=str(MAX_TOKENS),
        RATE_USER_PER_MINUTE="0",
    )


async def test_twenty_concurrent_asks_against_a_budget_for_five_send_at_most_five_requests(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, general = emulator.user("bob"), emulator.channel("general")
    vlm.respond_with(lambda request: Script(text="A boat.", gated=True))
    interactions = await asyncio.gather(
        *(emulator.run_slash_command(bob, general, "ask", {"prompt": f"question {n}"}) for n in range(ASKS))
    )
    refusal = "This request needs more than the"

    def refused() -> list[bool]:
        return [bool(i.original and refusal in i.original.content) for i in interactions]

    # every request either reached the model (and waits there, gated) or was refused before it
    await emulator.wait_for(lambda: len(vlm.completions) + sum(refused()) == ASKS, timeout=20)
    assert len(vlm.completions) == 5
    await release_until_done(vlm, vlm.completions)
    answered = [i for i, no in zip(interactions, refused(), strict=True) if not no]
    for interaction in answered:
        await emulator.wait_for_content(interaction.original, lambda text: text == "A boat.")
    assert len(vlm.completions) == 5
    line = next(i.original.content for i, no in zip(interactions, refused(), strict=True) if no)
    assert line.startswith(warning_line(refusal)) and "your daily token budget in this server" in line
