"""Security, end to end: nothing the bot sends pings anyone, secrets stay out of logs, messages
and storage, privileged actions are checked server-side (overwrites and threads included), and
hostile images in a watched channel end as a plain "needs review", never a crash or an action."""

from __future__ import annotations

import io
import json
import logging
import struct
import zlib
from pathlib import Path

import pytest
import redis
from PIL import Image

from bot.app import Glimpse
from bot.images import MAX_INPUT_BYTES
from bot.moderation import ButtonAction
from tests.e2e.conftest import bot_environment
from tests.e2e.test_moderation import (
    SCAM,
    buttons,
    click,
    deletes,
    field,
    moderation_requests,
    next_entry,
    picture,
    post_image,
    running_bot,
    setup_moderation,
    verdict,
)
from tests.fakes.discord import DiscordEmulator, Perm
from tests.fakes.discord.state import BOT_DEFAULT, Role
from tests.fakes.vlm import Script, VLMServer
from tests.store.conftest import redis_url  # noqa: F401  (the fixture)

COMMANDS_ROUTE = "/applications/{application_id}/commands"


def role(emulator: DiscordEmulator, name: str) -> Role:
    guild = emulator.world.guilds[emulator.channel("general").guild_id]
    return next(r for r in guild.roles.values() if r.name == name)


async def deny_in(emulator: DiscordEmulator, glimpse: Glimpse, channel_name: str, target: Role, deny: Perm) -> None:
    """A channel overwrite denying ``deny`` to ``target``, once the bot's cache has it."""
    channel = emulator.channel(channel_name)
    emulator.set_overwrite(channel, target, deny=deny)
    await emulator.wait_for(
        lambda: any(o.pair()[1].value for o in glimpse.get_channel(channel.id).overwrites.values()),  # type: ignore[union-attr]
        what="the overwrite in the bot's cache",
    )


# --- (c) privileged actions ----------------------------------------------------------------------


async def test_delete_button_follows_an_overwrite_in_the_flagged_channel(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """alice's role may manage messages, but not in #general where the flagged image is; she still may
    in #mod-log where she clicks. The click is judged by the flagged message's channel."""
    await setup_moderation(emulator)
    vlm.script(verdict(SCAM))
    posted = await post_image(emulator, "bob", picture(101))
    entry = await next_entry(emulator)
    await deny_in(emulator, glimpse, "general", role(emulator, "Moderator"), Perm.MANAGE_MESSAGES)

    refused = await click(emulator, "alice", entry, ButtonAction.DELETE)
    assert refused.ephemeral and "Manage Messages" in refused.original.content
    assert deletes(emulator) == [] and not posted.deleted and entry.edit_count == 0


async def test_delete_button_on_a_thread_image_follows_the_parent_overwrite(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)  # #general watched: its threads too
    vlm.script(verdict(SCAM))
    posted = await post_image(emulator, "bob", picture(102), channel="general-thread")
    entry = await next_entry(emulator)
    await deny_in(emulator, glimpse, "general", role(emulator, "Moderator"), Perm.MANAGE_MESSAGES)

    refused = await click(emulator, "alice", entry, ButtonAction.DELETE)
    assert refused.ephemeral and "Manage Messages" in refused.original.content
    assert deletes(emulator) == [] and not posted.deleted


async def test_forget_follows_a_channel_overwrite(glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer) -> None:
    await deny_in(emulator, glimpse, "general", role(emulator, "Moderator"), Perm.MANAGE_MESSAGES)
    alice = emulator.user("alice")
    refused = await emulator.run_slash_command(alice, emulator.channel("general"), "forget", {})
    await emulator.wait_for_response(refused)
    assert refused.ephemeral and "Manage Messages" in refused.original.content
    allowed = await emulator.run_slash_command(alice, emulator.channel("images"), "forget", {})
    await emulator.wait_for_response(allowed)
    assert "Manage Messages" not in (allowed.original.content or "")


async def test_check_image_follows_a_channel_overwrite(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await deny_in(
        emulator, glimpse, "general", role(emulator, "Moderator"),
        Perm.MANAGE_MESSAGES | Perm.MODERATE_MEMBERS | Perm.MANAGE_GUILD,
    )
    posted = await post_image(emulator, "bob", picture(103))
    refused = await emulator.use_message_command(emulator.user("alice"), posted, "Check image")
    await emulator.wait_for_response(refused)
    assert refused.ephemeral and "Only moderators" in refused.original.content
    assert moderation_requests(vlm) == []


async def test_only_the_owner_can_sync_commands(
    emulator: DiscordEmulator, vlm: VLMServer, settings_env: dict[str, str]
) -> None:
    owner = emulator.user("carol")
    env = {**settings_env, "OWNER_IDS": str(owner.id)}
    async with running_bot(emulator, env):
        bot_id = emulator.bot_user.id
        before = len(emulator.records.requests_to("PUT", COMMANDS_ROUTE))
        for user, where in (("alice", "general"), ("bob", "general-thread")):
            asked = await emulator.post_message(emulator.user(user), emulator.channel(where), f"<@{bot_id}> sync")
            answer = await emulator.wait_for_message(emulator.channel(where), after=asked)
            assert answer.content == "Only the bot's owner can do that."
        assert len(emulator.records.requests_to("PUT", COMMANDS_ROUTE)) == before

        asked = await emulator.post_message(owner, emulator.channel("general-thread"), f"<@{bot_id}> sync")
        answer = await emulator.wait_for_message(emulator.channel("general-thread"), after=asked)
        assert answer.content.startswith("Synced ")
        assert len(emulator.records.requests_to("PUT", COMMANDS_ROUTE)) > before


async def test_timeout_button_needs_the_server_wide_permission(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """Timeout Members is a server-wide permission (Discord ignores it in channel overwrites): a channel
    overwrite that hands it to bob in #general must not let him time carol out through the bot."""
    await setup_moderation(emulator)
    vlm.script(verdict(SCAM))
    await post_image(emulator, "carol", picture(104))
    entry = await next_entry(emulator)
    general = emulator.channel("general")
    emulator.set_overwrite(general, emulator.user("bob"), allow=Perm.MODERATE_MEMBERS)
    await emulator.wait_for(lambda: len(glimpse.get_channel(general.id).overwrites) > 0)  # type: ignore[union-attr]

    refused = await click(emulator, "bob", entry, ButtonAction.TIMEOUT)
    assert refused.ephemeral and "Timeout Members" in refused.original.content
    assert emulator.records.timeouts == [] and entry.edit_count == 0


async def test_a_thread_missing_from_the_cache_is_looked_up_not_guessed(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """After a restart an archived thread is not in the bot's cache: the clicker's permissions are still
    those of the thread (its parent's overwrites), not those of #mod-log where the button is."""
    await setup_moderation(emulator)
    vlm.script(verdict(SCAM))
    posted = await post_image(emulator, "bob", picture(105), channel="general-thread")
    entry = await next_entry(emulator)
    await deny_in(emulator, glimpse, "general", role(emulator, "Moderator"), Perm.MANAGE_MESSAGES)
    guild = glimpse.get_guild(emulator.world.channels[posted.channel_id].guild_id)  # type: ignore[arg-type]
    assert guild is not None
    thread = guild.get_thread(posted.channel_id)
    assert thread is not None
    guild._remove_thread(thread)  # as discord.py forgets archived threads

    refused = await click(emulator, "alice", entry, ButtonAction.DELETE)
    assert refused.ephemeral and "Manage Messages" in refused.original.content
    assert deletes(emulator) == [] and not posted.deleted


# --- (a) nothing the bot sends pings anyone ------------------------------------------------------

PINGS = "@everyone @here <@&{role}> <@{user}>"


async def test_hostile_text_everywhere_pings_nobody(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """Mentions in a display name, a file name, the rules, a verdict's reason and rule, a description and
    a chat answer: every send, edit, interaction response and followup the bot makes pings nobody."""
    alice, carol = emulator.user("alice"), emulator.user("carol")
    pings = PINGS.format(role=role(emulator, "Moderator").id, user=alice.id)
    carol.global_name = carol.name = "@everyone"
    hostile = SCAM | {"reason": f"{pings} says the image.", "rule": f"Rule {pings}"}
    vlm.respond_with(lambda r: verdict(hostile) if "moderation classifier" in r.prompt else f"{pings} a cat.")

    await setup_moderation(emulator, watch="all channels", medium="delete")
    general = emulator.channel("general")
    opened = await emulator.run_slash_command(alice, general, "moderation setup", {"edit_rules": True})
    await emulator.wait_for_response(opened)
    submitted = await emulator.submit_modal(alice, opened, {"moderation-rules": f"1. Never {pings}."})
    await emulator.wait_for_answer(submitted)
    emulator.set_bot_permissions(BOT_DEFAULT & ~Perm.MANAGE_MESSAGES)  # so the missing-permission notice is sent
    await emulator.wait_for(lambda: not glimpse.guilds[0].me.guild_permissions.manage_messages)

    images = emulator.channel("images")
    posted = await emulator.post_message(carol, images, pings, attachments=[(f"{pings}.png", picture(110))])
    entry = await next_entry(emulator)
    await emulator.wait_for_message(emulator.channel("mod-log"), lambda m: "Manage Messages" in m.content)
    # (flagged in a watched describe channel: not described, so no description to check here)
    checked = await emulator.use_message_command(alice, posted, "Check image")
    await emulator.wait_for(lambda: checked.followups, what="the check's followup")
    shown = await emulator.run_slash_command(alice, images, "moderation show")
    await emulator.wait_for_response(shown)
    asked = await emulator.post_message(carol, images, f"<@{emulator.bot_user.id}> {pings}")
    answer = await emulator.wait_for_message(images, after=asked)
    await emulator.wait_for_content(answer, lambda text: "a cat" in text)
    await click(emulator, "alice", entry, ButtonAction.DISMISS)
    await emulator.wait_for(lambda: entry.edit_count >= 1)

    bot = emulator.bot_user
    sent = [r for r in emulator.records.mentions if emulator.world.messages[r.message_id].author is bot]
    assert [m for m in emulator.bot_messages(images) if m.interaction_id is None] == [answer]  # no description
    assert len(sent) >= 6, sent  # entry, its edit, notice, check, show, answer + edits
    pinging = [r for r in sent if r.pinged_anyone]
    assert pinging == [], [emulator.world.messages[r.message_id] for r in pinging]
    assert "@everyone" in "".join(m.content for m in emulator.bot_messages(images))  # the text itself arrived


# --- (b) secrets stay secret ---------------------------------------------------------------------


def redis_dump(url: str) -> bytes:
    """Every key and value in the Redis database, read by type (DUMP would compress them)."""
    parts: list[bytes] = []
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter():
            parts.append(key)
            kind = client.type(key)
            if kind == b"string":
                parts.append(client.get(key) or b"")
            elif kind == b"hash":
                parts.extend(k + v for k, v in client.hgetall(key).items())
            elif kind == b"list":
                parts.extend(client.lrange(key, 0, -1))
            elif kind == b"set":
                parts.extend(client.smembers(key))
            elif kind == b"zset":
                parts.extend(member for member, _ in client.zrange(key, 0, -1, withscores=True))
            else:
                raise AssertionError(f"unexpected Redis type {kind!r} for {key!r}")
    return b"\n".join(parts)


@pytest.fixture(params=["sqlite", "redis"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'glimpse.db'}"
    url: str = request.getfixturevalue("redis_url")
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


async def test_secrets_never_reach_logs_messages_or_the_store(
    emulator: DiscordEmulator,
    vlm: VLMServer,
    store_location: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run in which the provider quotes the API key in its 401 (for moderation and for chat), with
    everything logged at DEBUG: neither the Discord token nor the model API key appears
    in any log line, anything sent to Discord, or the stored data."""
    env = bot_environment(emulator, vlm, store_location)
    token, key = env["DISCORD_TOKEN"], env["VLM_API_KEY"]
    echo = f"Incorrect API key provided: {key}."
    caplog.set_level(logging.DEBUG)
    async with running_bot(emulator, env):
        await setup_moderation(emulator)
        vlm.script(Script.error(401, echo))
        await post_image(emulator, "bob", picture(120))
        notice = await emulator.wait_for_message(emulator.channel("mod-log"))  # an outage: one notice
        assert "cannot be checked" in notice.content
        vlm.script(Script.error(401, echo), "A teal square.")
        general, bot_id = emulator.channel("general"), emulator.bot_user.id
        for question in ("what is this?", "and now?"):
            asked = await emulator.post_message(emulator.user("alice"), general, f"<@{bot_id}> {question}")
            answer = await emulator.wait_for_message(general, after=asked)
            await emulator.wait_for(lambda answer=answer: answer.content != "…", what="the final answer")
        await emulator.wait_for(lambda: any("teal" in m.content for m in emulator.bot_messages(general)))

    secrets = (token, key)
    assert all(s not in caplog.text for s in secrets), "a secret reached a log line"
    sent = json.dumps([(r.path, r.query, r.headers, r.json) for r in emulator.requests], default=str)
    sent += "".join(f.data.decode("latin-1") for r in emulator.requests for f in r.files)
    assert all(s not in sent for s in secrets), "a secret reached Discord"
    if store_location.startswith("sqlite"):
        stored = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir())
    else:
        stored = redis_dump(store_location)
    assert len(stored) > 1000
    assert all(s.encode() not in stored for s in secrets), "a secret reached the store"


# --- (d) hostile images in a watched channel -----------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height``, with one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def many_frames_gif(frames: int) -> bytes:
    images = [Image.new("P", (32, 32), i % 256) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=20, loop=0)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (png_header_only(100_000, 100_000), "megapixels"),  # a decompression bomb by its header
        (png_header_only(60_000, 1_000), "megapixels"),  # over the limit, under Pillow's own
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_INPUT_BYTES + 1), "larger than 25 MB"),
    ],
    ids=["bomb", "huge-dimensions", "26-MB"],
)
async def test_hostile_images_need_review_without_a_model_call_or_an_action(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, data: bytes, reason: str
) -> None:
    await setup_moderation(emulator, low="delete_timeout", medium="delete_timeout", high="delete_timeout")
    posted = await post_image(emulator, "bob", data)
    entry = await next_entry(emulator)
    assert "Needs human review" in field(entry, "Verdict") and reason in field(entry, "Verdict")
    assert not posted.deleted and deletes(emulator) == [] and emulator.records.timeouts == []
    assert moderation_requests(vlm) == [] and entry.attachments == []

    vlm.script(verdict(SCAM))  # and the bot carries on
    await post_image(emulator, "bob", picture(130))
    after = await next_entry(emulator, after=entry)
    assert "Scam" in field(after, "Verdict")


async def test_an_animated_image_with_thousands_of_frames_is_checked_by_its_first_frame(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    await setup_moderation(emulator)
    vlm.script(verdict(SCAM))
    data = many_frames_gif(3000)
    posted = await emulator.post_message(
        emulator.user("bob"), emulator.channel("general"), "", attachments=[("anim.gif", data, "image/gif")]
    )
    entry = await next_entry(emulator)
    assert "Scam" in field(entry, "Verdict")
    [request] = moderation_requests(vlm)
    assert len(request.images) == 1 and request.images[0].format in ("PNG", "JPEG")
    assert not posted.deleted


async def test_a_button_naming_another_server_does_nothing(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    """A mod-log entry whose button names another server (as another build could have sent): refused."""
    await setup_moderation(emulator)
    vlm.script(verdict(SCAM))
    posted = await post_image(emulator, "bob", picture(140))
    entry = await next_entry(emulator)
    other = emulator.channel("lobby")
    forged = buttons(entry)[ButtonAction.DELETE]["custom_id"].split(":")
    forged[2] = str(other.guild_id)
    custom_id = ":".join(forged)
    row = entry.components[0]
    emulator.set_components(entry, [{**row, "components": [{**row["components"][0], "custom_id": custom_id}]}])

    refused = await emulator.click_button(emulator.user("alice"), entry, custom_id)
    await emulator.wait_for_response(refused)
    assert refused.ephemeral and "another server" in refused.original.content
    assert deletes(emulator) == [] and not posted.deleted
