"""Link previews download side by side: each holds what its response declares in the download budget,
not the 25 MB cap a preview of unknown size used to hold (at most two of those fit in 64 MB).

The emulator's media proxy holds its answers until all eight previews of one message are being
fetched at once (or five seconds pass, so a bot fetching two at a time is seen, not hung).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Glimpse
from bot.images import MAX_INPUT_BYTES
from tests.e2e.conftest import bot_environment
from tests.e2e.helpers import png
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer

pytestmark = pytest.mark.timeout(60)

PREVIEWS = 8
COLOURS = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "black")


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer(max_images=PREVIEWS) as server:
        yield server


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    return bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'glimpse.db'}",
                           EMBED_WAIT_SECONDS="3", MAX_IMAGES_PER_REQUEST=str(PREVIEWS))


async def test_eight_previews_in_one_message_download_at_once_and_are_all_described(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    vlm.script("Eight coloured squares.")
    pictures = [png(200 + 10 * i, 100, colour) for i, colour in enumerate(COLOURS)]
    links = [f"https://example.com/{colour}.png" for colour in COLOURS]
    for link, picture in zip(links, pictures, strict=True):
        emulator.media.link(link, picture)
    emulator.media.answer_together(PREVIEWS, timeout=5)
    bob, images = emulator.user("bob"), emulator.channel("images")

    posted = await emulator.post_message(bob, images, "look " + " ".join(links))
    reply = await emulator.wait_for_message(images, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda content: content == "Eight coloured squares.")

    assert emulator.media.most_at_once == PREVIEWS
    (request,) = vlm.completions
    assert sorted(image.width for image in request.images) == [200 + 10 * i for i in range(PREVIEWS)]
    # The budget held the bytes the proxy declared, never a cap per preview.
    assert glimpse.downloads.peak <= sum(len(picture) for picture in pictures) < MAX_INPUT_BYTES
    assert glimpse.downloads.in_use == 0 and glimpse.downloads.holders == 0
