"""A Redis that accepts the connection and then never answers fails a command within the configured
read timeout, instead of freezing the bot's request (and, at start, the bot)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.exceptions

from bot.store import StoreOptions, open_store


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_silent_redis_times_out_at_start(silent_redis: str) -> None:
    options = StoreOptions(connect_timeout=0.5, command_timeout=0.3)
    with pytest.raises(redis.exceptions.TimeoutError):
        await asyncio.wait_for(open_store(silent_redis, options), 5)
