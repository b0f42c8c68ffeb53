"""Regenerate keeps working after the bot restarts: the button's custom ID and the store hold all a
click needs (no state of the process that posted the answer)."""

from __future__ import annotations

from pathlib import Path

from bot.app import Glimpse
from bot.settings import Settings
from tests.e2e.helpers import assert_discord_refused_nothing, pace_like, reply_to, scaled_emulator_config
from tests.e2e.steering import buttons, mention
from tests.fakes.discord import DiscordEmulator, EmulatorConfig
from tests.fakes.vlm import VLMServer


def emulator_config() -> EmulatorConfig:  # not a fixture: this module builds its bots itself
    return scaled_emulator_config()


async def test_regenerate_after_a_restart_streams_into_the_same_message(
    vlm: VLMServer, tmp_path: Path
) -> None:
    config = emulator_config()
    async with DiscordEmulator(config=config) as emulator:
        env = {
            **emulator.environment(),
            "VLM_API_KEY": vlm.api_key,
            "VLM_BASE_URL": vlm.base_url,
            "STORE_URL": f"sqlite:///{tmp_path / 'glimpse.db'}",
        }
        vlm.script("The first answer.", "The answer after the restart.")
        general = emulator.channel("general")

        first = Glimpse(Settings.from_env(env), sync_commands=True)
        async with emulator.running(first):
            pace_like(first, config)
            question = await emulator.post_message(emulator.user("bob"), general, mention(emulator, "what is teal?"))
            reply = await reply_to(emulator, question)
            await emulator.wait_for(lambda: "Regenerate" in buttons(reply.components))

        second = Glimpse(Settings.from_env(env))
        async with emulator.running(second):
            pace_like(second, config)
            clicked = await emulator.click_button(emulator.user("bob"), reply, buttons(reply.components)["Regenerate"])
            await emulator.wait_for(
                lambda: reply.content == "The answer after the restart." and "Regenerate" in buttons(reply.components)
            )
            assert clicked.callback_types == [6]
            turns = await second.store.history(general.id)
            assert [t.text for t in turns] == ["what is teal?", "The answer after the restart."]
        assert [m.id for m in emulator.bot_messages(general)] == [reply.id]  # no new message
        assert_discord_refused_nothing(emulator)
