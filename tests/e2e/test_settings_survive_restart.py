"""A server's settings survive a restart, on SQLite and on Redis: an admin configures one bot, it
stops, a new one starts on the same store and behaves as configured."""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from bot.prompts import CHAT_RULES
from bot.settings import Settings
from cogs.settings import PERSONA_INPUT_ID
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import png
from tests.e2e.server_settings import answer_of, answered, bot_replies_to, run_settings, submit_form
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer
from tests.store.conftest import redis_url, store_url  # noqa: F401  (fixtures: a fresh SQLite file or Redis db)

pytestmark = pytest.mark.timeout(90)


async def test_settings_survive_a_restart(
    emulator: DiscordEmulator,
    vlm: VLMServer,
    store_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    settings = Settings.from_env(bot_environment(emulator, vlm, store_url))
    alice, bob = emulator.user("alice"), emulator.user("bob")
    general, images = emulator.channel("general"), emulator.channel("images")

    async with emulator.running(Glimpse(settings, sync_commands=True)):
        answer_of(await run_settings(emulator, alice, "describe", {"channel": general, "on": True}))
        answer_of(await run_settings(emulator, alice, "describe", {"channel": images, "on": False}))
        answer_of(await run_settings(emulator, alice, "access", {"user": emulator.user("carol"), "rule": "block"}))
        form = await run_settings(emulator, alice, "persona")
        saved = await submit_form(emulator, alice, form, {PERSONA_INPUT_ID: "You are a museum guide."})
        answer_of(saved)

    async with emulator.running(again := Glimpse(settings, sync_commands=True)):
        assert (await again.server_settings.get(emulator.guild().id)).version == 4
        vlm.script("A teal square.")
        described = await emulator.post_message(bob, general, "", attachments=[("a.png", png())])
        await answered(emulator, vlm, described, "A teal square.")
        off = await emulator.post_message(bob, images, "", attachments=[("b.png", png())])
        blocked = await emulator.post_message(emulator.user("carol"), general, f"<@{emulator.bot_user.id}> hi")
        vlm.script("Welcome to the museum.")
        asked = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> where am I?")
        await answered(emulator, vlm, asked, "Welcome to the museum.")
        assert vlm.completions[-1].body["messages"][0]["content"] == f"You are a museum guide.\n\n{CHAT_RULES}"
        assert bot_replies_to(emulator, off) == bot_replies_to(emulator, blocked) == []
        assert len(vlm.completions) == 2
        shown = await run_settings(emulator, alice, "show")
        assert shown.original.embeds[0]["footer"]["text"] == "Settings version 4"
