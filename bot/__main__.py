"""`python -m bot [--sync]`: read the configuration, then run the bot until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time

import discord
import yarl
from dotenv import load_dotenv

from bot import metrics
from bot.app import Glimpse
from bot.logs import setup_logging
from bot.settings import Settings, SettingsError

log = logging.getLogger("bot")


def point_discord_at(settings: Settings) -> None:
    """Send REST and gateway traffic to a Discord-compatible server instead of discord.com, if asked."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
        log.info("Discord REST API base: %s", settings.discord_api_base)
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
        log.info("Discord gateway: %s", settings.discord_gateway_url)


async def run_bot(
    settings: Settings, *, sync_commands: bool, message_content: bool = True, started_at: float | None = None
) -> None:
    bot = Glimpse(settings, message_content=message_content, sync_commands=sync_commands, started_at=started_at)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    async with bot:
        await bot.start(settings.discord_token.reveal())


def main(argv: list[str] | None = None) -> int:
    started_at = time.monotonic()
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the Glimpse Discord bot.")
    parser.add_argument("--sync", action="store_true", help="register the slash commands with Discord first")
    args = parser.parse_args(argv)

    load_dotenv()
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        lines = "\n".join(f"  - {problem}" for problem in error.problems)
        sys.stderr.write(
            f"Glimpse cannot start, the configuration needs attention:\n{lines}\n"
            "Copy .env.example to .env and fill it in (or set these in the environment).\n"
        )
        return 2

    if settings.metrics_port is not None and not metrics.available():
        sys.stderr.write("Glimpse cannot start: METRICS_PORT needs prometheus-client (pip install '.[metrics]').\n")
        return 2
    setup_logging(settings.log_level, secrets=settings.secrets)
    point_discord_at(settings)
    message_content = True
    while True:
        try:
            asyncio.run(
                run_bot(settings, sync_commands=args.sync, message_content=message_content, started_at=started_at)
            )
            return 0
        except discord.PrivilegedIntentsRequired:
            if not message_content:
                raise
            log.warning(
                "Discord refused the Message Content intent. Enable it for the bot in the Developer Portal "
                "(Bot > Privileged Gateway Intents) for automatic descriptions; continuing without it."
            )
            message_content = False
        except discord.LoginFailure:
            log.error("Discord rejected DISCORD_TOKEN. Check the token in .env (Bot > Reset Token).")
            return 1


if __name__ == "__main__":
    sys.exit(main())
