"""A pasted image link counts as an image once Discord previews it, and only Discord's media proxy
is ever fetched: an embed pointing anywhere else (here a second local server) is never requested."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import Glimpse
from bot.images.media import LINK_NOT_OPENED, NOT_FETCHED
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import WARNING, assert_discord_refused_nothing, png
from tests.e2e.test_moderation import CLEAN, SCAM, next_entry, picture, setup_moderation, verdict
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import RecordedRequest, VLMServer

pytestmark = pytest.mark.timeout(60)


class Outside:
    """A second local server standing for any address on the internet: it logs every request."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.log.append(request.path_qs)
        return web.Response(body=png(50, 50, "red"), content_type="image/png")


@pytest.fixture
async def outside() -> AsyncIterator[Outside]:
    server = Outside()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    return bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'glimpse.db'}", EMBED_WAIT_SECONDS="2")


async def test_a_link_only_message_in_a_describe_channel_is_described_after_its_preview(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("An orange square.")
    emulator.media.link("https://example.com/pictures/square.png", png(320, 200, "orange"))
    bob, images = emulator.user("bob"), emulator.channel("images")

    posted = await emulator.post_message(bob, images, "look https://example.com/pictures/square.png")
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: content == "An orange square.")

    (request,) = vlm.completions
    assert [(i.width, i.height) for i in request.images] == [(320, 200)]
    (fetched,) = emulator.media.downloads
    assert fetched.startswith("/external/") and fetched.endswith("/https/example.com/pictures/square.png")
    assert_discord_refused_nothing(emulator)


async def test_an_embed_outside_the_media_hosts_is_never_requested_and_the_user_is_told(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, outside: Outside
) -> None:
    bob, images = emulator.user("bob"), emulator.channel("images")
    link = f"{outside.url}/cat.png"
    posted = await emulator.post_message(bob, images, f"see {link}")
    # A preview whose proxy_url is not Discord's proxy (as a forged or foreign embed would carry).
    embed = {"type": "image", "url": link, "thumbnail": {"url": link, "proxy_url": f"{outside.url}/proxy/cat.png"}}
    await emulator.unfurl(posted, [embed])

    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: content.startswith(WARNING))
    assert NOT_FETCHED in reply.content and "127.0.0.1" in reply.content
    assert outside.log == []  # neither the embed's url nor its proxy_url was requested
    assert vlm.completions == []
    assert_discord_refused_nothing(emulator)


async def test_a_question_about_a_link_that_never_previews_says_links_are_not_opened(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, outside: Outside
) -> None:
    vlm.script("I can't see an image here.")
    bob, general = emulator.user("bob"), emulator.channel("general")
    posted = await emulator.post_message(bob, general, f"{glimpse.user.mention} what is {outside.url}/x.png ?")

    reply = await emulator.wait_for_message(general, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: LINK_NOT_OPENED in content)
    assert outside.log == []
    (request,) = vlm.completions
    assert not request.images
    assert_discord_refused_nothing(emulator)


async def test_a_gif_picker_video_is_seen_through_its_thumbnail(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("A dancing cat.")
    gif = "https://tenor.com/view/dancing-cat-123"
    emulator.media.link(gif, png(200, 150, "purple"), kind="gifv")
    bob, images = emulator.user("bob"), emulator.channel("images")

    posted = await emulator.post_message(bob, images, gif)
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: content == "A dancing cat.")
    assert [(i.width, i.height) for i in vlm.completions[0].images] == [(200, 150)]
    assert not any(path.endswith(".mp4") for path in emulator.media.downloads)  # the video is not fetched
    assert_discord_refused_nothing(emulator)


async def test_a_scam_link_in_a_watched_describe_channel_is_judged_before_it_could_be_described(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    images = emulator.channel("images")
    await setup_moderation(emulator, add_channel=images)  # #images is watched and described

    def answer(request: RecordedRequest) -> str:
        if "moderation classifier" not in request.prompt:
            return "A plain square."
        return verdict(SCAM if request.images[0].width > 300 else CLEAN)  # the scam is the larger picture

    vlm.respond_with(answer)
    emulator.media.link("https://nitro-gift.example/claim.png", picture(3))  # 640x480
    bob = emulator.user("bob")
    scam = await emulator.post_message(bob, images, "https://nitro-gift.example/claim.png")
    await next_entry(emulator)  # flagged through its preview
    clean = await emulator.post_message(bob, images, attachments=[("square.png", png(200, 200))])
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == clean.id)
    await emulator.wait_for_content(reply, lambda content: content == "A plain square.")
    assert [m for m in emulator.bot_messages(images) if m.reference_id == scam.id] == []  # never described
    assert len([r for r in vlm.completions if "moderation classifier" not in r.prompt]) == 1
    assert_discord_refused_nothing(emulator)
