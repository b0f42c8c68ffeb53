"""After a restart, deleting a message still deletes the bot's description of it and its exchange: which
messages are about which is in the store, not in the process that posted them. With Redis, the process
Discord tells of the deletion need not be the one that posted the description (here: a new one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_deleting_a_message_deletes_the_replies import ALT_TEXT, described, forgotten
from tests.e2e.test_moderation import picture, running_bot
from tests.fakes.discord import DiscordEmulator
from tests.fakes.vlm import VLMServer
from tests.store.conftest import redis_server


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request: pytest.FixtureRequest, settings_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield settings_env
        return
    with redis_server(tmp_path) as (url, _):
        yield {**settings_env, "STORE_URL": url}


async def test_after_a_restart_deleting_an_image_still_deletes_its_description(
    emulator: DiscordEmulator, vlm: VLMServer, store_env: dict[str, str]
) -> None:
    vlm.script(ALT_TEXT)
    images = emulator.channel("images")
    async with running_bot(emulator, store_env):
        posted = await emulator.post_message(emulator.user("bob"), images, "", attachments=[("a.png", picture(5))])
        description = await described(emulator, posted)

    async with running_bot(emulator, store_env) as restarted:  # a new client on the same store
        assert len(await restarted.store.history(images.id)) == 2
        await emulator.delete_message(posted)
        await emulator.wait_for(lambda: description.deleted, what="the description deleted")
        assert emulator.bot_messages(images) == []
        await forgotten(restarted, images.id)
