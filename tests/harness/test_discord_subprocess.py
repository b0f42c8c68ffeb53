"""One emulator serves a bot running in another process, and the same bot again after a restart."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fakes.discord import DiscordEmulator

pytestmark = pytest.mark.timeout(60)

BOT = textwrap.dedent(
    """
    import os, yarl, discord, discord.gateway, discord.http

    discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)

    @client.event
    async def on_message(message):
        if message.content == "ping":
            await message.channel.send(f"pong from {os.getpid()}")

    client.run(os.environ["DISCORD_TOKEN"], log_handler=None)
    """
)


async def start_bot(emulator: DiscordEmulator, script: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, **emulator.environment()}
    return await asyncio.create_subprocess_exec(sys.executable, str(script), env=env)


async def test_bot_in_a_subprocess_survives_a_restart(tmp_path: Path) -> None:
    script = tmp_path / "bot.py"
    script.write_text(BOT)
    async with DiscordEmulator() as emulator:
        bob, general = emulator.user("bob"), emulator.channel("general")
        for _ in range(2):  # the second run is the restarted process
            process = await start_bot(emulator, script)
            try:
                await emulator.wait_until_connected(timeout=30)
                ping = await emulator.post_message(bob, general, "ping")
                pong = await emulator.wait_for_message(general, after=ping, timeout=10)
                assert pong.content == f"pong from {process.pid}"
            finally:
                process.terminate()
                await process.wait()
            await emulator.wait_for(lambda: not emulator.gateway.connected_sessions, what="bot gone")
        assert len(emulator.gateway.identify_payloads) == 2
