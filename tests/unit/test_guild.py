"""bot.guild: the settings record, the channel and access rules, and the cached compare-and-set service."""

from __future__ import annotations

import asyncio

import pytest

from bot.guild import (
    PERSONA_MAX_CHARS,
    AltLength,
    ChatMode,
    Decision,
    Defaults,
    Feature,
    GuildSettings,
    GuildSettingsError,
    GuildSettingsService,
    Member,
    Place,
    RoleRule,
    behaviour,
    decide,
    language_for,
)
from bot.guild.policy import BLOCKED, CHAT_OFF, NEEDS_MANAGE_SERVER, NO_DMS, NOT_ALLOWED
from bot.store import SettingsConflictError, open_store

GUILD, GENERAL, IMAGES, THREAD = 10, 20, 30, 40
MODS, BANNED = 100, 200
DEFAULTS = Defaults(describe_channel_ids=frozenset({IMAGES}))
HERE = Place(GENERAL, GUILD)


def test_the_record_round_trips_and_keeps_fields_it_does_not_know() -> None:
    settings = (
        GuildSettings()
        .with_describe(GENERAL, True)
        .with_describe(IMAGES, False)
        .with_chat(GENERAL, ChatMode.THREAD)
        .with_role_rule(MODS, RoleRule.ALLOW)
        .with_role_rule(BANNED, RoleRule.BLOCK)
        .with_user_blocked(7, True)
        .with_persona("  You are a pirate.  ")
        .with_persona("Speak French.", GENERAL)
        .with_alt_text(language="de", length=AltLength.SHORT, skip_described=True)
    )
    raw = settings.to_dict() | {"welcome": {"channel": 5}}
    again = GuildSettings.from_dict(raw)
    assert again.persona == "You are a pirate."
    assert again.to_dict() == raw  # a newer build's "welcome" survives this build's write
    assert GuildSettings.from_dict(None) == GuildSettings()


def test_clear_and_mention_remove_what_they_set() -> None:
    settings = GuildSettings().with_role_rule(MODS, RoleRule.ALLOW).with_chat(GENERAL, ChatMode.OFF)
    assert settings.with_role_rule(MODS, RoleRule.BLOCK).allowed_roles == frozenset()
    cleared = settings.with_role_rule(MODS, RoleRule.CLEAR)
    assert cleared.to_dict() == GuildSettings().with_chat(GENERAL, ChatMode.OFF).to_dict()
    assert settings.with_chat(GENERAL, ChatMode.MENTION).chat == {}
    assert GuildSettings().with_user_blocked(7, True).with_user_blocked(7, False).blocked_users == frozenset()
    assert GuildSettings().with_persona("x", GENERAL).with_persona("", GENERAL).channel_personas == {}


def test_invalid_changes_say_why() -> None:
    with pytest.raises(GuildSettingsError, match=f"at most {PERSONA_MAX_CHARS} characters"):
        GuildSettings().with_persona("x" * (PERSONA_MAX_CHARS + 1))
    with pytest.raises(GuildSettingsError, match="unknown alt-text language 'klingon'"):
        GuildSettings().with_alt_text(language="klingon")
    with pytest.raises(GuildSettingsError, match="unreadable"):
        GuildSettings.from_dict({"chat": {"1": "sometimes"}})


def test_a_channel_follows_its_own_setting_then_its_parent_then_the_deployment() -> None:
    settings = GuildSettings().with_describe(GENERAL, True).with_chat(GENERAL, ChatMode.EVERY_MESSAGE)
    here = behaviour(settings, DEFAULTS, HERE)
    assert (here.describe, here.describe_from) == (True, "server")
    assert (here.chat, here.chat_from) == (ChatMode.EVERY_MESSAGE, "server")
    thread = behaviour(settings, DEFAULTS, Place(THREAD, GUILD, parent_id=GENERAL))
    assert (thread.describe, thread.chat) == (True, ChatMode.EVERY_MESSAGE)
    images = behaviour(settings, DEFAULTS, Place(IMAGES, GUILD))
    assert (images.describe, images.describe_from, images.chat_from) == (True, "deployment", "deployment")
    off = behaviour(settings.with_describe(IMAGES, False), DEFAULTS, Place(IMAGES, GUILD))
    assert (off.describe, off.describe_from) == (False, "server")


def test_a_free_response_channel_answers_images_instead_of_describing_them() -> None:
    settings = GuildSettings().with_describe(GENERAL, True).with_chat(GENERAL, ChatMode.EVERY_MESSAGE)
    assert not behaviour(settings, DEFAULTS, HERE).auto_describe
    assert behaviour(settings.with_chat(GENERAL, ChatMode.MENTION), DEFAULTS, HERE).auto_describe


def test_in_a_thread_mode_channel_only_the_bots_own_threads_are_conversations() -> None:
    settings = GuildSettings().with_chat(GENERAL, ChatMode.THREAD)
    assert behaviour(settings, DEFAULTS, HERE).chat == ChatMode.THREAD
    own = behaviour(settings, DEFAULTS, Place(THREAD, GUILD, parent_id=GENERAL, bot_thread=True))
    assert own.conversation_thread and own.answers_every_message
    other = behaviour(settings, DEFAULTS, Place(THREAD, GUILD, parent_id=GENERAL))
    assert (other.chat, other.answers_every_message) == (ChatMode.MENTION, False)


def test_the_persona_is_the_channels_own_else_the_servers() -> None:
    settings = GuildSettings().with_persona("Server voice.").with_persona("Channel voice.", GENERAL)
    assert behaviour(settings, DEFAULTS, Place(THREAD, GUILD, parent_id=GENERAL)).persona == "Channel voice."
    assert behaviour(settings, DEFAULTS, Place(IMAGES, GUILD)).persona == "Server voice."


def member(*roles: int, user: int = 1, admin: bool = False) -> Member:
    return Member(user, frozenset(roles), manages_guild=admin)


def test_access_a_block_always_wins_and_any_allow_rule_limits_use_to_those_roles() -> None:
    open_server = GuildSettings()
    assert decide(open_server, DEFAULTS, member(), HERE, Feature.CHAT) == Decision(True)
    blocked = open_server.with_role_rule(BANNED, RoleRule.BLOCK)
    assert decide(blocked, DEFAULTS, member(BANNED, MODS), HERE, Feature.CHAT) == Decision(False, BLOCKED)
    assert decide(open_server.with_user_blocked(1, True), DEFAULTS, member(), HERE, Feature.OCR).reason == BLOCKED
    limited = open_server.with_role_rule(MODS, RoleRule.ALLOW)
    assert decide(limited, DEFAULTS, member(MODS), HERE, Feature.DESCRIBE).allowed
    assert decide(limited, DEFAULTS, member(), HERE, Feature.DESCRIBE) == Decision(False, NOT_ALLOWED)
    assert decide(limited.with_role_rule(BANNED, RoleRule.BLOCK), DEFAULTS, member(MODS, BANNED), HERE,
                  Feature.CHAT).reason == BLOCKED


def test_settings_are_for_manage_server_members_who_are_never_locked_out() -> None:
    lockout = GuildSettings().with_user_blocked(1, True).with_role_rule(MODS, RoleRule.ALLOW)
    assert decide(lockout, DEFAULTS, member(admin=True), HERE, Feature.SETTINGS).allowed
    assert decide(GuildSettings(), DEFAULTS, member(), HERE, Feature.SETTINGS) == Decision(False, NEEDS_MANAGE_SERVER)


def test_channel_rules_chat_off_and_describe_off() -> None:
    settings = GuildSettings().with_chat(GENERAL, ChatMode.OFF)
    assert decide(settings, DEFAULTS, member(), HERE, Feature.CHAT) == Decision(False, CHAT_OFF)
    assert decide(settings, DEFAULTS, member(), HERE, Feature.DESCRIBE).allowed  # /describe still works
    assert not decide(settings, DEFAULTS, member(), HERE, Feature.AUTO_DESCRIBE).allowed
    assert decide(settings, DEFAULTS, member(), Place(IMAGES, GUILD), Feature.AUTO_DESCRIBE).allowed


def test_dms_follow_the_deployment() -> None:
    dm = Place(99)
    assert decide(GuildSettings(), DEFAULTS, member(), dm, Feature.CHAT).allowed
    no_dms = Defaults(allow_dms=False)
    assert decide(GuildSettings(), no_dms, member(), dm, Feature.CHAT) == Decision(False, NO_DMS)
    assert behaviour(GuildSettings(), no_dms, dm).chat == ChatMode.OFF


def test_alt_text_language_fixed_or_the_posters_then_the_servers() -> None:
    assert language_for("auto", "de", "fr") == "German"
    assert language_for("auto", None, "fr") == "French"
    assert language_for("auto", "xx", None) == "English"
    assert language_for("ja", "de", "fr") == "Japanese"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_service_caches_reads_and_a_change_here_invalidates_at_once(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    async with await open_store(url) as store, await open_store(url) as elsewhere:
        clock = Clock()
        service = GuildSettingsService(store, DEFAULTS, cache_seconds=10, clock=clock)
        other = GuildSettingsService(elsewhere, DEFAULTS, cache_seconds=10, clock=clock)
        told: list[int] = []
        service.on_change.append(told.append)
        assert not (await other.behaviour(HERE)).describe  # cached in the other process now
        stored = await service.update(GUILD, lambda s: s.with_describe(GENERAL, True), actor_id=5, summary="on")
        assert stored.version == 1 and told == [GUILD]
        assert (await service.behaviour(HERE)).describe  # this process: at once
        assert not (await other.behaviour(HERE)).describe  # another: after its cache expires...
        other.invalidate(GUILD)  # ...or when told
        assert (await other.behaviour(HERE)).describe
        await service.update(GUILD, lambda s: s.with_describe(GENERAL, False), actor_id=5, summary="off")
        clock.now = 11
        assert not (await other.behaviour(HERE)).describe
        with pytest.raises(SettingsConflictError):
            await other.update(GUILD, lambda s: s.with_persona("x"), actor_id=6, summary="stale", expected_version=1)
        assert [c.summary for c in await service.changes(GUILD)] == ["off", "on"]


async def test_a_stalled_store_gives_way_to_the_last_known_settings_within_the_read_timeout(tmp_path) -> None:
    async with await open_store(f"sqlite:///{tmp_path / 'g.db'}") as store:
        clock = Clock()
        service = GuildSettingsService(store, DEFAULTS, cache_seconds=10, read_timeout=0.05, clock=clock)
        await service.update(GUILD, lambda s: s.with_describe(GENERAL, True), actor_id=5, summary="on")
        assert (await service.behaviour(HERE)).describe  # read once, cached
        stalled, asked = asyncio.Event(), []

        async def stall(*_: object) -> None:
            asked.append(1)
            await stalled.wait()

        store.load_guild_settings = stall  # type: ignore[method-assign]
        clock.now = 11  # the cache entry is stale: the store is asked, and does not answer
        assert (await service.behaviour(HERE)).describe  # the last known settings, after 0.05 s
        assert (await service.behaviour(HERE)).describe and len(asked) == 1  # kept a while: not asked again
        assert (await service.get(GUILD + 1)).version == 0  # never read: the defaults
        stalled.set()
