"""A GIF sticker reaches the real discord.py with a URL on the emulator's media proxy.

Discord serves GIF stickers only on its media proxy, and discord.py hard-codes that URL
(``https://media.discordapp.net/stickers/{id}.gif``) instead of building it from ``Asset.BASE``; while
``running()``, the emulator moves it to its own origin, where the sticker's bytes are served.
"""

from __future__ import annotations

import discord
import pytest

from tests.fakes.discord import DiscordEmulator
from tests.fakes.discord.media import STICKER_GIF
from tests.harness.test_discord_emulator import intents
from tests.harness.test_discord_media import _get
from tests.unit.test_animation_contact_sheet import moving_dot

pytestmark = pytest.mark.timeout(60)


async def test_a_gif_sticker_is_served_where_discord_py_looks_for_it_while_running() -> None:
    client = discord.Client(intents=intents())
    seen: list[discord.Message] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    animation = moving_dot(12)
    async with DiscordEmulator() as emulator:
        async with emulator.running(client):
            dance = emulator.media.sticker("dance", animation, STICKER_GIF)
            await emulator.post_message(emulator.user("bob"), emulator.channel("images"), stickers=[dance])
            await emulator.wait_for(lambda: seen)
            (sticker,) = seen[0].stickers
            assert sticker.format is discord.StickerFormatType.gif
            assert sticker.url == f"{emulator.base_url}/stickers/{dance.id}.gif"
            assert await _get(sticker.url) == (200, animation)
            assert emulator.media.downloads == [f"/stickers/{dance.id}.gif"]

        # Outside the block discord.py builds Discord's own URL again.
        item = discord.StickerItem(state=client._connection, data=dance.item())  # type: ignore[arg-type]
        assert item.url == f"https://media.discordapp.net/stickers/{dance.id}.gif"
