"""An interaction's token lives ``InteractionConfig.token_ttl`` (Discord: 15 minutes): after that the
emulator refuses every webhook route of it, with Discord's 401 and code 50027, as the real discord.py sees."""

from __future__ import annotations

import asyncio
import time

import discord
import pytest
from discord.ext import commands

from tests.fakes.discord import DiscordEmulator, EmulatorConfig, InteractionConfig
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)

TTL = 0.5


async def test_followups_and_edits_work_while_the_token_lives_and_get_401_50027_after() -> None:
    config = EmulatorConfig(interactions=InteractionConfig(token_ttl=TTL))
    bot = commands.Bot(command_prefix="!", intents=intents())
    expired = asyncio.Event()
    outcomes: dict[str, discord.HTTPException | None] = {}

    async def attempt(name: str, request: object) -> None:
        try:
            await request  # type: ignore[misc]
            outcomes[name] = None
        except discord.HTTPException as exc:
            outcomes[name] = exc

    @bot.tree.command(name="long", description="Outlives its token")
    async def long(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await attempt("edit original", interaction.edit_original_response(content="started"))
        followup = await interaction.followup.send("more", wait=True)
        await attempt("edit followup", followup.edit(content="more!"))
        await expired.wait()
        await attempt("late edit original", interaction.edit_original_response(content="too late"))
        await attempt("late followup", interaction.followup.send("too late", wait=True))
        await attempt("late edit followup", followup.edit(content="too late"))
        await attempt("late fetch original", interaction.original_response())
        await attempt("late delete followup", followup.delete())
        await attempt("channel message", interaction.channel.send("an ordinary message"))  # type: ignore[union-attr]

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook

    async with DiscordEmulator(config=config) as emulator, emulator.running(bot):
        alice, general = emulator.user("alice"), emulator.channel("general")
        interaction = await emulator.run_slash_command(alice, general, "long")
        await emulator.wait_for(lambda: "edit followup" in outcomes, what="the work within the token's life")
        await emulator.wait_for(lambda: time.monotonic() - interaction.created > TTL, what="the token expired")
        expired.set()
        await emulator.wait_for(lambda: "channel message" in outcomes, what="the late attempts")

        assert outcomes["edit original"] is None and outcomes["edit followup"] is None
        late = [name for name in outcomes if name.startswith("late")]
        for name in late:
            refused = outcomes[name]
            assert refused is not None, name
            assert (refused.status, refused.code) == (401, 50027), name
            assert "Invalid Webhook Token" in refused.text
        assert outcomes["channel message"] is None  # the bot's own token is not the interaction's
        assert interaction.original_history == ["", "started"]
        assert [m.content for m in interaction.followups] == ["more!"]
        assert [(r.status, r.error_code) for r in emulator.refusals] == [(401, 50027)] * len(late)
