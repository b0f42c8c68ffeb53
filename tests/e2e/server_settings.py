"""Steps the `/settings` end-to-end tests share: an admin runs a subcommand, a person posts or mentions."""

from __future__ import annotations

from typing import Any

from bot.app import Glimpse
from bot.guild import SETTINGS_KEY
from tests.fakes.discord import Channel, DiscordEmulator, Interaction, Message, User
from tests.fakes.vlm import VLMServer


async def run_settings(
    emulator: DiscordEmulator, user: User, command: str, options: dict[str, Any] | None = None,
    channel: Channel | None = None,
) -> Interaction:
    """``user`` runs ``/settings <command>`` in ``channel`` (#general); returns it once answered
    (a form opened, or the deferred answer edited in)."""
    interaction = await emulator.run_slash_command(
        user, channel or emulator.channel("general"), f"settings {command}", options or {}
    )
    return await emulator.wait_for_answer(interaction)


async def submit_form(emulator: DiscordEmulator, user: User, form: Interaction, values: dict[str, str]) -> Interaction:
    """``user`` fills and submits the form the bot opened for ``form``; returns it once answered."""
    submitted = await emulator.submit_modal(user, form, values)
    return await emulator.wait_for_answer(submitted)


def answer_of(interaction: Interaction) -> str:
    assert interaction.ephemeral, "a /settings answer is for the admin only"
    assert interaction.original is not None
    return interaction.original.content


async def stored_version(glimpse: Glimpse, emulator: DiscordEmulator) -> int:
    return (await glimpse.store.load_guild_settings(emulator.guild().id, SETTINGS_KEY)).version


async def answered(
    emulator: DiscordEmulator, vlm: VLMServer, posted: Message, text: str, timeout: float = 5.0  # noqa: ASYNC109
) -> Message:
    """The bot's reply to ``posted``, once it reads ``text``."""
    channel = emulator.world.channels[posted.channel_id]
    reply = await emulator.wait_for_message(channel, lambda m: m.reference_id == posted.id, timeout=timeout)
    await emulator.wait_for_content(reply, lambda content: content == text, timeout=timeout)
    return reply


def bot_replies_to(emulator: DiscordEmulator, message: Message) -> list[Message]:
    """The bot's messages replying to ``message``, in any channel."""
    bot = emulator.bot_user
    return [m for m in emulator.world.messages.values() if m.reference_id == message.id and m.author is bot]
