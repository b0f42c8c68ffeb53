"""`/settings alt-text`, end to end: the language alt text is written in (the poster's Discord language
for ``auto``, else the server's, or a fixed one), its length, and images that already have a description."""

from __future__ import annotations

import pytest

from bot.app import Glimpse
from bot.prompts import ALT_TEXT_LENGTHS
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    emulator_config,
    paced_like_emulator,
    png,
)
from tests.e2e.server_settings import answer_of, answered, bot_replies_to, run_settings
from tests.fakes.discord import DiscordEmulator, NewFile, World, standard_world
from tests.fakes.vlm import RecordedRequest, VLMServer


@pytest.fixture
def emulator_world() -> World:
    world = standard_world()
    world.guild_named("Glimpse Lab").preferred_locale = "fr"  # the server's language, from GUILD_CREATE
    return world


def system_message(request: RecordedRequest) -> str:
    return str(request.body["messages"][0]["content"])


def writes_in(request: RecordedRequest) -> str:
    """The language the alt-text request asks for."""
    system = system_message(request)
    return system.rsplit("otherwise write in ", 1)[1].rstrip(".")


async def describe_in_images(emulator: DiscordEmulator, vlm: VLMServer, poster: str, answer: str) -> RecordedRequest:
    vlm.script(answer)
    posted = await emulator.post_message(emulator.user(poster), emulator.channel("images"), "",
                                         attachments=[("a.png", png())])
    await answered(emulator, vlm, posted, answer)
    return vlm.completions[-1]


async def test_auto_language_follows_the_posters_discord_language_else_the_servers(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, general = emulator.user("bob"), emulator.channel("general")
    bob.locale = "de"
    vlm.script("Ein Quadrat.")
    asked = await emulator.run_slash_command(bob, general, "describe", {"image": ("a.png", png())})
    await emulator.wait_for_response(asked)
    await emulator.wait_for_content(asked.original, lambda text: text == "Ein Quadrat.")
    assert writes_in(vlm.completions[-1]) == "German"  # the interaction's locale

    # bob's later images, posted as messages (which carry no locale), follow what his interaction said
    assert writes_in(await describe_in_images(emulator, vlm, "bob", "Ein Bild.")) == "German"
    # carol never used an interaction: the server's preferred locale
    assert writes_in(await describe_in_images(emulator, vlm, "carol", "Une image.")) == "French"


async def test_a_fixed_language_and_a_length_apply_to_everyone(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice = emulator.user("alice")
    done = answer_of(await run_settings(emulator, alice, "alt-text", {"language": "ja", "length": "short"}))
    assert done == "Saved: alt text: language ja, length short."
    request = await describe_in_images(emulator, vlm, "bob", "四角。")
    assert writes_in(request) == "Japanese"
    assert ALT_TEXT_LENGTHS["short"] in system_message(request)

    answer_of(await run_settings(emulator, alice, "alt-text", {"length": "detailed"}))
    request = await describe_in_images(emulator, vlm, "carol", "長い説明。")
    assert writes_in(request) == "Japanese" and ALT_TEXT_LENGTHS["detailed"] in system_message(request)
    current = answer_of(await run_settings(emulator, alice, "alt-text"))
    assert current == "Alt text: Japanese (ja), detailed, skip-described false."


async def test_images_that_already_carry_a_description_can_be_skipped(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, images = emulator.user("alice"), emulator.user("bob"), emulator.channel("images")
    answer_of(await run_settings(emulator, alice, "alt-text", {"skip-described": True}))
    described = NewFile("cat.png", png(color="orange"), description="My orange cat asleep on a chair")
    skipped = await emulator.post_message(bob, images, "", attachments=[described])
    request = await describe_in_images(emulator, vlm, "carol", "A teal square.")
    assert bot_replies_to(emulator, skipped) == []
    assert len(vlm.completions) == 1 and len(request.images) == 1

    # a message with one described and one bare image: only the bare one is described
    vlm.script("A red square.")
    mixed = await emulator.post_message(
        bob, images, "", attachments=[described, ("red.png", png(color="red"))]
    )
    await answered(emulator, vlm, mixed, "A red square.")
    assert len(vlm.completions[-1].images) == 1

    answer_of(await run_settings(emulator, alice, "alt-text", {"skip-described": False}))
    vlm.script("An orange cat.")
    again = await emulator.post_message(bob, images, "", attachments=[described])
    await answered(emulator, vlm, again, "An orange cat.")
