"""The Discord emulator serves the real, unpatched discord.py: login, messages, CDN, commands, components.

Each test defines a tiny bot inline and drives it through the emulator's people-facing actions.
"""

from __future__ import annotations

import hashlib

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import DiscordEmulator

pytestmark = pytest.mark.timeout(60)

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201e2d7d1b10000000049454e44ae426082"
)


def intents(message_content: bool = True) -> discord.Intents:
    value = discord.Intents.default()
    value.message_content = message_content
    return value


async def test_message_with_attachment_is_downloaded_replied_to_and_edited() -> None:
    client = discord.Client(intents=intents())

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        data = await message.attachments[0].read()
        reply = await message.reply(
            f"{message.attachments[0].filename}: {hashlib.sha256(data).hexdigest()[:12]}"
        )
        await reply.edit(content=reply.content + " (checked)")

    async with DiscordEmulator() as emulator, emulator.running(client):
        alice, general = emulator.user("alice"), emulator.channel("general")
        posted = await emulator.post_message(
            alice, general, "what is this?", attachments=[("dot.png", PNG_1x1)]
        )

        reply = await emulator.wait_for_message(general)
        await emulator.wait_for_edit_count(reply, 1)

        digest = hashlib.sha256(PNG_1x1).hexdigest()[:12]
        assert reply.history == [f"dot.png: {digest}", f"dot.png: {digest} (checked)"]
        assert reply.reference_id == posted.id
        assert [r.kind for r in reply.revisions] == ["create", "edit"]
        assert emulator.cdn.downloads == [posted.attachments[0].id]
        assert posted.attachments[0].width == 1
        # discord.py's default allowed_mentions is absent, so the reply pinged alice.
        assert emulator.mentions_for(reply)[0].users == {alice.id}
        sends = emulator.records.requests_to("POST", "/channels/{channel_id}/messages")
        assert sends[0].headers["Authorization"] == "<redacted>"
        assert int(sends[0].json["message_reference"]["message_id"]) == posted.id
        assert emulator.unknown_routes == []


async def test_slash_command_defers_edits_original_and_follows_up() -> None:
    bot = commands.Bot(command_prefix="!", intents=intents())
    seen: list[bytes] = []

    @bot.tree.command(name="describe", description="Describe an image")
    async def describe(
        interaction: discord.Interaction, image: discord.Attachment, detail: bool = False
    ) -> None:
        await interaction.response.defer(thinking=True)
        seen.append(await image.read())
        await interaction.edit_original_response(content="Looking")
        await interaction.edit_original_response(content=f"Looking at {image.filename} (detail={detail})")
        await interaction.followup.send("One more thing", ephemeral=True)

    settings = app_commands.Group(name="settings", description="Settings")
    channels = app_commands.Group(name="channel", description="Channels", parent=settings)

    @channels.command(name="add", description="Watch a channel")
    async def add(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        await interaction.response.send_message(f"watching {channel.mention}", ephemeral=True)

    bot.tree.add_command(settings)

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook

    async with DiscordEmulator() as emulator, emulator.running(bot):
        alice, images = emulator.user("alice"), emulator.channel("images")
        run = await emulator.run_slash_command(alice, images, "describe", {"image": ("cat.png", PNG_1x1)})
        await emulator.wait_for(lambda: run.followups, what="followup")

        assert run.callback_types == [5]
        assert run.original_history == ["", "Looking", "Looking at cat.png (detail=False)"]
        assert run.original.author.id == emulator.bot_user.id and not run.original.ephemeral
        assert [m.content for m in run.followups] == ["One more thing"]
        assert run.followups[0].ephemeral
        assert seen == [PNG_1x1]

        sub = await emulator.run_slash_command(alice, images, "settings channel add", {"channel": images})
        await emulator.wait_for_response(sub)
        assert sub.callbacks[0].type == 4 and sub.ephemeral
        assert sub.original.content == f"watching <#{images.id}>"
        assert emulator.unknown_routes == []


class Confirm(discord.ui.View):
    @discord.ui.button(label="Confirm", custom_id="confirm")
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[Confirm]) -> None:
        await interaction.response.edit_message(content=f"confirmed by {interaction.user.name}", view=None)


async def test_context_menu_and_button_click() -> None:
    bot = commands.Bot(command_prefix="!", intents=intents())

    @bot.tree.context_menu(name="Extract text")
    async def extract(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(f"text of {message.id}: {message.content}", view=Confirm())

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook

    async with DiscordEmulator() as emulator, emulator.running(bot):
        alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
        target = await emulator.post_message(bob, general, "STOP at the sign")
        menu = await emulator.use_message_command(alice, target, "Extract text")
        await emulator.wait_for_response(menu)
        answer = menu.original
        assert answer.content == f"text of {target.id}: STOP at the sign"
        assert menu.payload["data"]["target_id"] == str(target.id)

        click = await emulator.click_button(bob, answer, "confirm")
        await emulator.wait_for_response(click)
        assert click.callback_types == [7]
        assert answer.history[-1] == "confirmed by bob"
        assert answer.components == []


async def test_dm_history_fetch_and_reactions() -> None:
    client = discord.Client(intents=intents())

    async with DiscordEmulator() as emulator, emulator.running(client):
        bob, general = emulator.user("bob"), emulator.channel("general")
        first = await emulator.post_message(bob, general, "one")
        await emulator.post_message(bob, general, "two")

        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        history = [m.content async for m in channel.history(limit=10)]
        assert history == ["two", "one"]
        fetched = await channel.fetch_message(first.id)
        await fetched.add_reaction("👀")
        assert first.reactions == {"👀": {emulator.bot_user.id}}

        user = await client.fetch_user(bob.id)
        async with user.typing():
            await user.send("hello in private")
        dm = await emulator.wait_for_message(emulator.dm(bob))
        assert dm.content == "hello in private"
        assert [t.channel_id for t in emulator.records.typing] == [dm.channel_id]
        assert emulator.unknown_routes == []
