"""In a channel both described and watched, one download and one decode serve moderation and the
description: the image is requested from Discord once, however many features look at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import Glimpse
from bot.images.policy import LOW_LONG_SIDE
from tests.e2e.conftest import bot_environment
from tests.e2e.test_describe_and_moderation import ALT_TEXT, answers, descriptions
from tests.e2e.test_moderation import (
    CLEAN,
    SCAM,
    moderation_requests,
    next_entry,
    picture,
    setup_moderation,
    verdict,
)
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.vlm import RecordedRequest, VLMServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def settings_env(emulator: DiscordEmulator, vlm: VLMServer, tmp_path: Path) -> dict[str, str]:
    return bot_environment(emulator, vlm, f"sqlite:///{tmp_path / 'glimpse.db'}", EMBED_WAIT_SECONDS="2")


async def described(
    emulator: DiscordEmulator, vlm: VLMServer, posted: Message
) -> tuple[RecordedRequest, RecordedRequest]:
    """The moderation request and the description request, once the description is on screen."""
    reply = await emulator.wait_for_message(emulator.channel("images"), lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda text: text == ALT_TEXT)
    (checked,), (description,) = moderation_requests(vlm), descriptions(vlm)
    return checked, description


async def test_one_download_serves_the_verdict_and_the_description_with_the_same_image(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    images = emulator.channel("images")  # the describe channel, now watched too
    await setup_moderation(emulator, add_channel=images, detail="auto")  # the policy describe uses
    vlm.respond_with(answers(verdict(CLEAN)))  # type: ignore[arg-type]
    posted = await emulator.post_message(emulator.user("bob"), images, "", attachments=[("cat.png", picture(710))])

    checked, description = await described(emulator, vlm, posted)

    assert emulator.cdn.downloads == [posted.attachments[0].id]  # once, not once per feature
    assert checked.images[0].sha256 == description.images[0].sha256  # one prepared image for both


async def test_different_sizes_for_moderation_and_description_still_share_the_download(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    images = emulator.channel("images")
    await setup_moderation(emulator, add_channel=images)  # moderation looks at low detail (512 px)
    vlm.respond_with(answers(verdict(CLEAN)))  # type: ignore[arg-type]
    photo = picture(711, size=(1600, 1200))
    posted = await emulator.post_message(emulator.user("bob"), images, "", attachments=[("big.png", photo)])

    checked, description = await described(emulator, vlm, posted)

    assert emulator.cdn.downloads == [posted.attachments[0].id]
    low, full = checked.images[0], description.images[0]
    assert max(low.width, low.height) == LOW_LONG_SIDE < max(full.width, full.height)
    assert low.width / low.height == pytest.approx(full.width / full.height, rel=0.01)


async def test_a_link_preview_is_fetched_from_the_media_proxy_once_for_both(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    images = emulator.channel("images")
    await setup_moderation(emulator, add_channel=images, detail="auto")
    vlm.respond_with(answers(verdict(CLEAN)))  # type: ignore[arg-type]
    emulator.media.link("https://example.com/cat.png", picture(712))
    posted = await emulator.post_message(emulator.user("bob"), images, "look https://example.com/cat.png")

    checked, description = await described(emulator, vlm, posted)

    (fetched,) = emulator.media.downloads
    assert fetched.endswith("/https/example.com/cat.png")
    assert checked.images[0].sha256 == description.images[0].sha256


async def test_a_flagged_image_is_fetched_once_never_described_and_nothing_of_it_is_kept(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    images = emulator.channel("images")
    await setup_moderation(emulator, add_channel=images)
    vlm.respond_with(answers(verdict(SCAM)))  # type: ignore[arg-type]
    posted = await emulator.post_message(emulator.user("bob"), images, "", attachments=[("scam.png", picture(713))])
    await next_entry(emulator)
    await vlm.wait_for(lambda: all(r.finished.is_set() for r in vlm.completions))

    assert emulator.bot_messages(images) == [] and descriptions(vlm) == []
    assert emulator.cdn.downloads == [posted.attachments[0].id]
    assert len(glimpse.shared_images) == 0  # the copy prepared for the description is not kept


async def test_a_question_about_an_image_in_a_watched_channel_shares_the_check_s_download(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    general = emulator.channel("general")  # watched, not described
    await setup_moderation(emulator, detail="auto")
    vlm.respond_with(answers(verdict(CLEAN)))  # type: ignore[arg-type]
    question = f"<@{emulator.bot_user.id}> what is this?"
    posted = await emulator.post_message(emulator.user("bob"), general, question, attachments=[("q.png", picture(714))])

    reply = await emulator.wait_for_message(general, lambda m: m.reference_id == posted.id)
    await emulator.wait_for_content(reply, lambda text: text == ALT_TEXT)
    (checked,), (answered,) = moderation_requests(vlm), descriptions(vlm)
    assert emulator.cdn.downloads == [posted.attachments[0].id]
    assert checked.images[0].sha256 == answered.images[0].sha256
