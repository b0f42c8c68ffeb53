"""Two admins at once: changes that stand on their own both land; a form filled from what was stored
is refused with a reason when someone changed that meanwhile. Nothing is lost silently, in `/settings`
and in `/moderation setup` alike."""

from __future__ import annotations

import asyncio

from bot.app import Glimpse
from bot.guild import ChatMode
from bot.moderation import ModerationSettings
from cogs.moderation import RULES_INPUT_ID, STALE_FORM
from cogs.settings import PERSONA_INPUT_ID, STALE_PERSONA
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
)
from tests.e2e.server_settings import answer_of, run_settings, stored_version, submit_form
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer


async def test_two_admins_changing_settings_at_once_both_land(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, owner = emulator.user("alice"), emulator.user("lab-owner")
    general, images = emulator.channel("general"), emulator.channel("images")
    answers = await asyncio.gather(
        run_settings(emulator, alice, "describe", {"channel": general, "on": True}),
        run_settings(emulator, owner, "chat", {"channel": images, "mode": "every-message"}),
        run_settings(emulator, alice, "alt-text", {"length": "short"}),
        run_settings(emulator, owner, "access", {"user": emulator.user("bob"), "rule": "block"}),
    )
    assert all(not answer_of(a).startswith("Not saved") for a in answers), [answer_of(a) for a in answers]
    stored = await glimpse.server_settings.get(emulator.guild().id)
    assert stored.version == 4
    settings = stored.settings
    assert settings.describe == {general.id: True} and settings.chat == {images.id: ChatMode.EVERY_MESSAGE}
    assert settings.alt_text.length == "short" and settings.blocked_users == {emulator.user("bob").id}
    assert len(await glimpse.store.settings_changes(emulator.guild().id)) == 4
    assert_discord_refused_nothing(emulator)


async def test_a_persona_form_opened_before_someone_else_saved_theirs_is_refused(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, owner, general = emulator.user("alice"), emulator.user("lab-owner"), emulator.channel("general")
    alices_form = await run_settings(emulator, alice, "persona")
    owners_form = await run_settings(emulator, owner, "persona")
    assert alices_form.modal is not None and owners_form.modal is not None

    # an unrelated change in between does not stand in the way
    answer_of(await run_settings(emulator, owner, "describe", {"channel": general, "on": True}))
    saved = await submit_form(emulator, owner, owners_form, {PERSONA_INPUT_ID: "You are a ship's cat."})
    assert answer_of(saved) == "The persona for this server is saved."

    late = await submit_form(emulator, alice, alices_form, {PERSONA_INPUT_ID: "You are a lighthouse keeper."})
    assert answer_of(late) == STALE_PERSONA
    settings = (await glimpse.server_settings.get(emulator.guild().id)).settings
    assert settings.persona == "You are a ship's cat."  # the owner's, not lost
    assert settings.describe == {general.id: True}
    assert await stored_version(glimpse, emulator) == 2

    reopened = await run_settings(emulator, alice, "persona")  # shows the owner's text now; saving works
    assert reopened.modal is not None
    inputs = [c for row in reopened.modal["components"] for c in row.get("components", [row.get("component", {})])]
    assert any(c.get("value") == "You are a ship's cat." for c in inputs)
    again = await submit_form(emulator, alice, reopened, {PERSONA_INPUT_ID: "You are a lighthouse keeper."})
    assert answer_of(again) == "The persona for this server is saved."
    assert (await glimpse.server_settings.get(emulator.guild().id)).settings.persona == "You are a lighthouse keeper."
    assert_discord_refused_nothing(emulator)


async def test_a_moderation_rules_form_opened_before_another_change_is_refused_and_setups_at_once_both_land(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, owner = emulator.user("alice"), emulator.user("lab-owner")
    general, images, mod_log = emulator.channel("general"), emulator.channel("images"), emulator.channel("mod-log")
    await asyncio.gather(
        *(
            emulator.wait_for_answer(i)
            for i in await asyncio.gather(
                emulator.run_slash_command(alice, general, "moderation setup", {"add_channel": general}),
                emulator.run_slash_command(owner, general, "moderation setup", {"mod_log": mod_log}),
            )
        )
    )
    settings = await glimpse.moderation.settings(emulator.guild().id)
    assert settings is not None
    assert settings.watched_channel_ids == {general.id} and settings.mod_log_channel_id == mod_log.id

    form = await emulator.run_slash_command(alice, general, "moderation setup", {"edit_rules": True})
    await emulator.wait_for_response(form)
    assert form.modal is not None
    other = await emulator.run_slash_command(owner, general, "moderation setup", {"add_channel": images})
    await emulator.wait_for_answer(other)
    submitted = await submit_form(emulator, alice, form, {RULES_INPUT_ID: "No memes."})
    assert submitted.ephemeral and submitted.original.content == STALE_FORM
    settings = await glimpse.moderation.settings(emulator.guild().id)
    assert isinstance(settings, ModerationSettings)
    assert settings.watched_channel_ids == {general.id, images.id} and settings.rules == ""
    assert_discord_refused_nothing(emulator)
