"""A stalled store (answering, but late) must not push an interaction past Discord's 3 seconds.

Every interaction is claimed in the store before it is handled (once-only across processes). The
store here is a real redis-server that the test pauses for writes (``CLIENT PAUSE ... WRITE``: the
claim's SET waits, as it does behind a Redis fork or failover); the claim is given up on in time and
the command is answered here, which is safe because Discord accepts one response per interaction.
"""

from __future__ import annotations

import subprocess

import redis

from bot.app import Glimpse
from tests.e2e.test_memory_outage import private_redis, settings_env  # noqa: F401  (fixtures: a private redis-server)
from tests.fakes.discord import DiscordEmulator

PAUSE_MS = 5000  # longer than Discord's 3 seconds for the first response


async def test_a_command_is_acknowledged_in_time_while_the_store_stalls(
    glimpse: Glimpse,
    emulator: DiscordEmulator,
    private_redis: tuple[str, subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    with redis.Redis.from_url(private_redis[0]) as admin:
        admin.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
        try:
            used = await emulator.run_slash_command(emulator.user("alice"), emulator.channel("general"), "context")
            await emulator.wait_for_answer(used, timeout=10)
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
    assert used.callback_types == [5] and used.ephemeral  # deferred within the deadline, then answered
    assert used.original.content or used.original.embeds
