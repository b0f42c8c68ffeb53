"""Images people post beyond attachments reach the real discord.py as Discord sends them: a link's
preview arrives later as a MESSAGE_UPDATE with a ``proxy_url`` on the media proxy; stickers, forwarded
messages (``message_snapshots``) and replies to a message with files carry what discord.py reads."""

from __future__ import annotations

import asyncio

import aiohttp
import discord
import pytest

from tests.e2e.helpers import png
from tests.fakes.discord import DiscordEmulator
from tests.fakes.discord.media import STICKER_APNG, STICKER_LOTTIE
from tests.harness.test_discord_emulator import intents

pytestmark = pytest.mark.timeout(60)


async def _get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()


async def test_a_posted_link_is_unfurled_a_moment_later_with_a_proxy_url_on_the_emulator() -> None:
    client = discord.Client(intents=intents())
    created: list[discord.Message] = []
    embeds_at_create: list[int] = []
    updates: list[discord.RawMessageUpdateEvent] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        created.append(message)
        embeds_at_create.append(len(message.embeds))

    @client.event
    async def on_raw_message_edit(update: discord.RawMessageUpdateEvent) -> None:
        updates.append(update)

    picture = png(320, 200, "orange")
    async with DiscordEmulator() as emulator, emulator.running(client):
        emulator.media.link("https://example.com/cat.png", picture)
        posted = await emulator.post_message(emulator.user("bob"), emulator.channel("images"), "https://example.com/cat.png")
        await emulator.wait_for(lambda: created and updates, what="create, then the unfurl")
        assert embeds_at_create == [0]  # the preview is not in MESSAGE_CREATE
        after = updates[0].message
        assert after.id == posted.id and after.edited_at is None  # Discord's unfurl is no edit by the author
        embed = after.embeds[0]
        assert embed.type == "image" and embed.url == "https://example.com/cat.png"
        assert embed.thumbnail.url == "https://example.com/cat.png"
        assert embed.thumbnail.proxy_url.startswith(emulator.base_url + "/external/")
        assert (embed.thumbnail.width, embed.thumbnail.height) == (320, 200)
        assert created[0].embeds == after.embeds  # the cached message is updated in place
        assert await _get(embed.thumbnail.proxy_url) == (200, picture)
        assert emulator.media.downloads == [embed.thumbnail.proxy_url.removeprefix(emulator.base_url)]
        assert posted.edit_count == 0

        article = emulator.media.embed("https://news.example/story", picture, kind="article")
        await emulator.unfurl(posted, [article])
        await emulator.wait_for(lambda: len(updates) == 2)
        assert [e.type for e in updates[1].message.embeds] == ["image", "article"]
        assert updates[1].message.embeds[1].image.proxy_url == article["image"]["proxy_url"]


async def test_an_edit_that_adds_a_link_is_unfurled_a_moment_later_and_a_kept_link_is_not_again() -> None:
    client = discord.Client(intents=intents())
    updates: list[discord.RawMessageUpdateEvent] = []

    @client.event
    async def on_raw_message_edit(update: discord.RawMessageUpdateEvent) -> None:
        updates.append(update)

    async with DiscordEmulator() as emulator, emulator.running(client):
        emulator.media.link("https://example.com/cat.png", png(320, 200, "orange"))
        bob, images = emulator.user("bob"), emulator.channel("images")
        posted = await emulator.post_message(bob, images, "", attachments=[("a.png", png())])
        await emulator.edit_message(posted, "and https://example.com/cat.png")
        await emulator.wait_for(lambda: len(updates) == 2, what="the edit, then the unfurl")
        edit, unfurl = (update.message for update in updates)
        assert edit.edited_at is not None and edit.embeds == []  # the preview is not in the edit
        assert [e.url for e in unfurl.embeds] == ["https://example.com/cat.png"]
        assert unfurl.attachments[0].filename == "a.png"

        await emulator.edit_message(posted, "still https://example.com/cat.png")
        await emulator.wait_for(lambda: len(updates) == 3)
        await asyncio.sleep(emulator.config.unfurl_delay * 3)  # an unfurl would have come by now
        assert len(updates) == 3 and len(posted.embeds) == 1


async def test_stickers_forwards_and_replies_with_files_carry_their_images() -> None:
    client = discord.Client(intents=intents())
    seen: list[discord.Message] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    picture = png(64, 64, "green")
    async with DiscordEmulator() as emulator, emulator.running(client):
        bob, images, general = emulator.user("bob"), emulator.channel("images"), emulator.channel("general")
        wave = emulator.media.sticker("wave", picture, STICKER_APNG)
        dance = emulator.media.sticker("dance", b"{}", STICKER_LOTTIE)
        await emulator.post_message(bob, images, stickers=[wave, dance])
        original = await emulator.post_message(bob, images, "look", attachments=[("scam.png", picture)])
        await emulator.forward(emulator.user("carol"), original, general)
        await emulator.reply(emulator.user("alice"), original, "what is this?")
        await emulator.wait_for(lambda: len(seen) == 4)
        stickers, _, forward, reply = seen

        assert [(s.name, s.format) for s in stickers.stickers] == [
            ("wave", discord.StickerFormatType.apng),
            ("dance", discord.StickerFormatType.lottie),
        ]
        assert stickers.stickers[0].url == f"{emulator.base_url}/stickers/{wave.id}.png"
        assert await _get(stickers.stickers[0].url) == (200, picture)

        assert forward.reference is not None and forward.reference.type is discord.MessageReferenceType.forward
        assert forward.reference.channel_id == images.id and forward.reference.resolved is None
        (snapshot,) = forward.message_snapshots
        assert snapshot.content == "look" and [a.filename for a in snapshot.attachments] == ["scam.png"]
        assert await snapshot.attachments[0].read() == picture

        assert reply.reference is not None and reply.reference.type is discord.MessageReferenceType.reply
        replied = reply.reference.resolved
        assert isinstance(replied, discord.Message) and [a.filename for a in replied.attachments] == ["scam.png"]
        assert await replied.attachments[0].read() == picture

        emoji = emulator.media.emoji("blob", picture)
        await emulator.post_message(bob, images, f"what is {emoji}?")
        await emulator.wait_for(lambda: len(seen) == 5)
        assert await _get(discord.PartialEmoji.from_str(emoji).url) == (200, picture)


async def test_the_proxy_can_hold_its_answers_until_requests_arrive_together_and_counts_them() -> None:
    async with DiscordEmulator() as emulator:
        urls = [emulator.media.host(f"/external/t/https/example.com/{i}.png", png(8, 8, "red")) for i in range(3)]
        emulator.media.answer_together(3, timeout=5)
        answers = await asyncio.gather(*(_get(url) for url in urls))
        assert [status for status, _ in answers] == [200, 200, 200]
        assert emulator.media.most_at_once == 3 and emulator.media.in_flight == 0

        emulator.media.most_at_once = 0
        emulator.media.answer_together(2, timeout=0.2)  # one at a time: each is answered after the timeout
        assert await _get(urls[0]) == (200, png(8, 8, "red"))
        assert await _get(urls[1]) == (200, png(8, 8, "red"))
        assert emulator.media.most_at_once == 1
