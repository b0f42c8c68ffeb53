"""One contract, every backend: each test runs against SQLite and a real Redis (see conftest)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bot.conversation import ImageRef, Turn
from bot.store import (
    PROJECT_DIR,
    AuditGroup,
    AuditRecord,
    DuplicateAnswerError,
    ExchangeForgotten,
    Lease,
    NotAdmitted,
    RateLimit,
    SettingsChange,
    SettingsConflictError,
    Store,
    StoreOptions,
    UsageRow,
    VersionedSettings,
    open_store,
    sqlite_path,
)
from bot.store.records import SETTINGS_CHANGES_KEPT, Replies
from bot.store.sqlite import MIGRATIONS, SchemaTooNewError

CHANNEL = 111
OTHER = 222
GUILD = 333
T0 = time.time() - 3600
POLL_LIMIT = 5.0


@dataclass(frozen=True)
class Prepared:
    """Shaped like bot.images.prepare.PreparedImage, as far as the store cares."""

    data: bytes
    mime: str = "image/jpeg"
    width: int = 64
    height: int = 48
    detail: str = "low"
    tokens: int = 85

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def image(seed: int) -> Prepared:
    return Prepared(f"jpeg bytes {seed} ".encode() * 200)


def turn(
    n: int, *images: Prepared, role: str = "user", at: float | None = None, mid: int | None = -1
) -> Turn:
    return Turn(
        role,  # type: ignore[arg-type]
        f"user {n}" if role == "user" else "Glimpse",
        n,
        f"text {n}",
        tuple(ImageRef.of(i) for i in images),
        created_at=T0 + n if at is None else at,
        message_id=1000 + n if mid == -1 else mid,
    )


def answer(n: int, *, at: float | None = None, mid: int | None = -1) -> Turn:
    return turn(n, role="assistant", at=at, mid=mid)


def exchange(store: Store, channel_id: int, n: int, *images: Prepared, at: float | None = None,
             blobs: tuple[Prepared, ...] | None = None) -> Awaitable[bool]:
    """Store question ``n`` (showing ``images``, whose bytes go along unless ``blobs`` says otherwise)
    and its answer, the way the bot does."""
    question, reply = turn(n, *images, at=at), answer(n, at=at)
    return store.append_exchange(channel_id, question, reply, images if blobs is None else blobs)


def who(turns: list[Turn]) -> list[tuple[str, int]]:
    return [(t.role, t.author_id) for t in turns]


async def wait_for(predicate: Callable[[], Awaitable[bool]]) -> None:
    """Poll an async predicate until true, failing after POLL_LIMIT seconds."""
    deadline = time.monotonic() + POLL_LIMIT
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_append_and_history_round_trip(store: Store) -> None:
    first = turn(1, image(1), image(2))
    assert await store.append_exchange(CHANNEL, first, answer(2), [image(1), image(2)])
    assert await store.append_exchange(CHANNEL, turn(3), answer(4))
    history = await store.history(CHANNEL)
    assert history == [first, answer(2), turn(3), answer(4)]
    assert [t.text for t in await store.history(CHANNEL, limit=3)] == ["text 2", "text 3", "text 4"]
    assert [t.text for t in await store.history(CHANNEL, limit=1)] == ["text 4"]
    assert await store.history(CHANNEL, limit=0) == []
    assert await store.history(OTHER) == []
    assert await store.get_images([image(1).sha256, "0" * 64]) == {image(1).sha256: image(1).data}


async def test_redelivered_questions_are_stored_once(store: Store) -> None:
    # the question and the answer share message id 1001: same id, other role
    assert await store.append_exchange(CHANNEL, turn(1), answer(1))
    assert not await store.append_exchange(CHANNEL, turn(1), answer(9))
    assert await store.append_exchange(OTHER, turn(1), answer(1))  # same id, other channel
    assert await store.append_exchange(CHANNEL, turn(2, mid=None), answer(2, mid=None))
    # no message id: never de-duplicated
    assert await store.append_exchange(CHANNEL, turn(2, mid=None), answer(2, mid=None))
    assert who(await store.history(CHANNEL)) == [("user", 1), ("assistant", 1)] + [("user", 2), ("assistant", 2)] * 2


async def test_concurrent_appends_lose_nothing_and_keep_each_writers_order(store: Store) -> None:
    async def writer(n: int) -> None:
        assert await exchange(store, CHANNEL, n)
        assert await exchange(store, CHANNEL, n + 100)

    await asyncio.gather(*(writer(n) for n in range(50)))
    history = await store.history(CHANNEL)
    assert len(history) == 200
    questions = [t.author_id for t in history if t.role == "user"]
    assert sorted(questions) == [*range(50), *range(100, 150)]
    for n in range(50):  # each writer's first exchange before its second
        assert questions.index(n) < questions.index(n + 100)


async def test_concurrent_redelivery_stores_one_exchange(store: Store) -> None:
    results = await asyncio.gather(*(exchange(store, CHANNEL, 7, image(7)) for _ in range(20)))
    assert results.count(True) == 1
    assert who(await store.history(CHANNEL)) == [("user", 7), ("assistant", 7)]
    assert (await store.stats()).images == 1


async def test_concurrent_exchanges_keep_every_answer_right_after_its_question(store: Store) -> None:
    async def exchange(n: int) -> bool:
        attached = (image(n % 3),) if n % 2 else ()
        return await store.append_exchange(CHANNEL, turn(n, *attached), turn(n, role="assistant"), attached)

    assert await asyncio.gather(*(exchange(n) for n in range(30))) == [True] * 30
    history = await store.history(CHANNEL)
    assert len(history) == 60
    assert sorted(t.author_id for t in history[::2]) == list(range(30))
    for question, answer in zip(history[::2], history[1::2], strict=True):
        assert (question.role, answer.role) == ("user", "assistant")
        assert answer.author_id == question.author_id, "another writer came between a question and its answer"
    assert (await store.stats()).images == 3


async def test_a_redelivered_exchange_stores_nothing(store: Store) -> None:
    assert await store.append_exchange(CHANNEL, turn(1, image(1)), turn(1, role="assistant", mid=None), [image(1)])
    before = await store.history(CHANNEL)

    # the same question again (with another answer, even another image's bytes): nothing changes
    again = turn(1, image(1), image(2))
    assert not await store.append_exchange(CHANNEL, again, turn(9, role="assistant", mid=None), [image(2)])
    results = await asyncio.gather(*(
        store.append_exchange(CHANNEL, turn(2), turn(2, role="assistant", mid=None)) for _ in range(10)
    ))
    assert results.count(True) == 1
    history = await store.history(CHANNEL)
    assert history[:2] == before
    assert [(t.role, t.author_id) for t in history] == [("user", 1), ("assistant", 1), ("user", 2), ("assistant", 2)]
    assert await store.get_images([image(2).sha256]) == {}


async def test_an_exchange_is_all_or_nothing(store: Store) -> None:
    assert await store.append_exchange(CHANNEL, turn(4), answer(5))
    with pytest.raises(DuplicateAnswerError):
        await store.append_exchange(CHANNEL, turn(6, image(6)), turn(5, role="assistant"), [image(6)])
    with pytest.raises(ValueError, match="not referenced"):
        await store.append_exchange(CHANNEL, turn(7), turn(7, role="assistant"), [image(7)])
    with pytest.raises(ValueError, match="user turn followed by an assistant"):
        await store.append_exchange(CHANNEL, turn(8, role="assistant"), turn(8))
    assert who(await store.history(CHANNEL)) == [("user", 4), ("assistant", 5)]
    assert await store.get_images([image(6).sha256, image(7).sha256]) == {}
    assert await store.append_exchange(CHANNEL, turn(6, image(6)), turn(6, role="assistant"), [image(6)])


SNOWFLAKE = 1_312_400_000_000_000_123  # a real-sized Discord id: more digits than a double holds


async def test_replace_answer_changes_only_the_answer_right_after_its_question(store: Store) -> None:
    question = turn(1, image(1), mid=SNOWFLAKE)
    answer = turn(2, role="assistant", mid=None)
    assert await store.append_exchange(CHANNEL, question, answer, [image(1)])
    assert await store.append_exchange(CHANNEL, turn(3), turn(4, role="assistant", mid=None))
    assert await store.append_exchange(OTHER, turn(5, mid=SNOWFLAKE), turn(6, role="assistant", mid=None))

    assert await store.replace_answer(CHANNEL, SNOWFLAKE, "a second answer")
    history = await store.history(CHANNEL)
    assert [t.text for t in history] == ["text 1", "a second answer", "text 3", "text 4"]
    assert history[1] == dataclasses.replace(answer, text="a second answer")  # its time and place kept
    assert history[0] == question  # the question (and its image) untouched
    assert await store.get_images([image(1).sha256]) == {image(1).sha256: image(1).data}
    assert [t.text for t in await store.history(OTHER)] == ["text 5", "text 6"]  # other channels untouched

    assert await store.replace_answer(CHANNEL, SNOWFLAKE, "a second answer, continued")
    assert (await store.history(CHANNEL))[1].text == "a second answer, continued"


async def test_replace_answer_without_such_an_answer_changes_nothing(store: Store) -> None:
    assert not await store.replace_answer(CHANNEL, 1001, "nothing to replace")  # empty channel
    assert await store.append_exchange(CHANNEL, turn(2), turn(3, role="assistant"))
    assert not await store.replace_answer(CHANNEL, 1001, "no such question")
    assert not await store.replace_answer(CHANNEL, 1003, "an answer is not a question")
    assert not await store.replace_answer(OTHER, 1002, "wrong channel")
    assert [t.text for t in await store.history(CHANNEL)] == ["text 2", "text 3"]


OLD_TURN = {  # a turn as stored before ImageRef had ``spoiler``
    "role": "user", "author_name": "bob", "author_id": 3, "text": "old", "created_at": T0, "message_id": 3,
    "images": [{"sha256": "ab" * 32, "mime": "image/jpeg", "width": 64, "height": 48, "tokens": 85, "detail": "low"}],
}


def store_old_turn(store_url: str, channel_id: int) -> None:
    """Write :data:`OLD_TURN` the way the previous code did, behind the store's back."""
    if store_url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(store_url)) as conn:
            conn.execute(
                "INSERT INTO turns (channel_id, role, author_name, author_id, text, images, created_at, message_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (channel_id, "user", "bob", 3, "old", json.dumps(OLD_TURN["images"]), T0, 3),
            )
    else:
        with redis.Redis.from_url(store_url) as client:
            client.rpush(f"glimpse:turns:{channel_id}", json.dumps(OLD_TURN))


async def test_spoiler_flags_are_kept_and_turns_stored_without_them_still_load(store: Store, store_url: str) -> None:
    question = Turn("user", "bob", 1, "no peeking", (ImageRef.of(image(1), spoiler=True), ImageRef.of(image(2))),
                    created_at=T0, message_id=1)
    assert await store.append_exchange(CHANNEL, question, turn(1, role="assistant"), [image(1), image(2)])
    assert (await store.history(CHANNEL))[0] == question
    assert [i.spoiler for i in question.images] == [True, False]

    store_old_turn(store_url, OTHER)
    [old] = await store.history(OTHER)
    assert old.images == (ImageRef("ab" * 32, "image/jpeg", 64, 48, 85, "low", spoiler=False),)


async def test_same_image_is_stored_once(store: Store) -> None:
    await exchange(store, CHANNEL, 1, image(1))
    await exchange(store, CHANNEL, 2, image(1))
    await exchange(store, OTHER, 3, image(1), image(2))
    await exchange(store, OTHER, 4, image(2), blobs=())  # bytes already there: none passed
    stats = await store.stats()
    assert (stats.channels, stats.turns, stats.images) == (2, 8, 2)
    assert stats.image_bytes == len(image(1).data) + len(image(2).data)


async def test_images_must_be_referenced_by_the_question(store: Store) -> None:
    with pytest.raises(ValueError, match="not referenced"):
        await exchange(store, CHANNEL, 1, image(1), blobs=(image(2),))
    assert await store.history(CHANNEL) == []
    assert await store.get_images([image(2).sha256]) == {}


async def test_forget_removes_turns_and_unshared_images(store: Store) -> None:
    shared, own = image(1), image(2)
    await exchange(store, CHANNEL, 1, shared, own)
    await exchange(store, CHANNEL, 2)
    await exchange(store, OTHER, 3, shared)

    assert await store.forget(CHANNEL) == 4
    assert await store.history(CHANNEL) == []
    assert await store.get_images([shared.sha256, own.sha256]) == {shared.sha256: shared.data}
    assert len(await store.history(OTHER)) == 2

    assert await store.forget(OTHER) == 2
    assert await store.get_images([shared.sha256]) == {}
    assert await store.stats() == (await store.stats()).__class__(0, 0, 0, 0)
    assert await store.forget(OTHER) == 0
    # forgotten message ids may be stored again
    assert await exchange(store, OTHER, 3)


async def test_trimming_keeps_the_newest_turns_and_drops_their_images(store_url: str) -> None:
    store = await open_store(store_url, StoreOptions(keep_turns=3))
    try:
        await exchange(store, CHANNEL, 1, image(1))
        await exchange(store, CHANNEL, 2, image(2))
        await exchange(store, CHANNEL, 3, image(2), blobs=())
        assert who(await store.history(CHANNEL)) == [("assistant", 2), ("user", 3), ("assistant", 3)]
        assert set(await store.get_images([image(1).sha256, image(2).sha256])) == {image(2).sha256}
        await exchange(store, CHANNEL, 4)
        assert who(await store.history(CHANNEL)) == [("assistant", 3), ("user", 4), ("assistant", 4)]
        assert await store.get_images([image(2).sha256]) == {}
    finally:
        await store.close()


async def test_purge_applies_retention(store: Store) -> None:
    now = time.time()
    old, kept = image(1), image(2)
    await store.append_exchange(CHANNEL, turn(1, old, kept, at=now - 100 * 86400), answer(1, at=now - 99 * 86400),
                                [old, kept])
    await exchange(store, CHANNEL, 3, kept, at=now - 60, blobs=())
    await exchange(store, OTHER, 4, old, at=now - 50 * 86400, blobs=())

    assert await store.purge(now - 30 * 86400) == 4
    assert who(await store.history(CHANNEL)) == [("user", 3), ("assistant", 3)]
    assert await store.history(OTHER) == []
    assert set(await store.get_images([old.sha256, kept.sha256])) == {kept.sha256}
    assert await store.purge(now - 30 * 86400) == 0
    # a purged message id is not "seen" any more either
    assert await exchange(store, OTHER, 4, at=now)


async def test_memory_survives_close_and_reopen(store_url: str) -> None:
    store = await open_store(store_url)
    await exchange(store, CHANNEL, 1, image(1))
    await store.set_guild_settings(GUILD, "moderation", {"watched": [1, 2]})
    record = AuditRecord("verdict", "spam", "log")
    await store.add_audit(GUILD, record)
    await store.close()

    store = await open_store(store_url)
    try:
        assert await store.history(CHANNEL) == [turn(1, image(1)), answer(1)]
        assert await store.get_images([image(1).sha256]) == {image(1).sha256: image(1).data}
        assert await store.get_guild_settings(GUILD, "moderation") == {"watched": [1, 2]}
        assert await store.audit_records(GUILD, since=0) == [record]
        assert not await exchange(store, CHANNEL, 1)  # de-duplication survives too
    finally:
        await store.close()


async def test_guild_settings(store: Store) -> None:
    assert await store.get_guild_settings(GUILD, "moderation") is None
    await store.set_guild_settings(GUILD, "moderation", {"log_channel": 5, "rules": "be kind ✓"})
    await store.set_guild_settings(GUILD, "other", {"x": 1})
    await store.set_guild_settings(GUILD + 1, "moderation", {"log_channel": 6})
    await store.set_guild_settings(GUILD, "moderation", {"log_channel": 7})
    assert await store.get_guild_settings(GUILD, "moderation") == {"log_channel": 7}
    assert await store.get_guild_settings(GUILD, "other") == {"x": 1}
    assert await store.get_guild_settings(GUILD + 1, "moderation") == {"log_channel": 6}


async def test_guild_settings_are_versioned_and_swapped_only_from_the_version_read(store: Store) -> None:
    assert await store.load_guild_settings(GUILD, "server") == VersionedSettings(None, 0)
    change = SettingsChange("server", 0, actor_id=7, summary="describe on")
    first = await store.swap_guild_settings(GUILD, "server", {"a": 1}, expected_version=0, change=change)
    assert first == VersionedSettings({"a": 1}, 1)
    # a writer that read version 0 too loses, and writes nothing
    assert await store.swap_guild_settings(GUILD, "server", {"b": 2}, expected_version=0, change=change) is None
    assert await store.swap_guild_settings(GUILD, "server", {"b": 2}, expected_version=2, change=change) is None
    second = await store.swap_guild_settings(GUILD, "server", {"a": 2}, expected_version=1, change=change)
    assert second == VersionedSettings({"a": 2}, 2)
    assert await store.load_guild_settings(GUILD, "server") == VersionedSettings({"a": 2}, 2)
    assert await store.load_guild_settings(GUILD, "moderation") == VersionedSettings(None, 0)
    assert await store.load_guild_settings(GUILD + 1, "server") == VersionedSettings(None, 0)
    assert [c.version for c in await store.settings_changes(GUILD)] == [2, 1]


async def test_settings_changes_say_who_changed_what_and_when_newest_first(store: Store) -> None:
    before = time.time()
    await store.update_guild_settings(GUILD, "server", lambda _: {"n": 1}, actor_id=7, summary="describe #a on")
    await store.update_guild_settings(GUILD, "moderation", lambda _: {"m": 1}, actor_id=8, summary="mod-log #b")
    await store.update_guild_settings(GUILD + 1, "server", lambda _: {"n": 9}, actor_id=9, summary="elsewhere")
    changes = await store.settings_changes(GUILD)
    assert [(c.key, c.version, c.actor_id, c.summary) for c in changes] == [
        ("moderation", 1, 8, "mod-log #b"),
        ("server", 1, 7, "describe #a on"),
    ]
    assert all(before <= c.created_at <= time.time() for c in changes)
    assert len(await store.settings_changes(GUILD, limit=1)) == 1
    for n in range(SETTINGS_CHANGES_KEPT + 5):
        await store.update_guild_settings(GUILD, "server", lambda _, n=n: {"n": n}, actor_id=7, summary=f"#{n}")
    kept = await store.settings_changes(GUILD, limit=1000)
    assert len(kept) == SETTINGS_CHANGES_KEPT
    assert kept[0].summary == f"#{SETTINGS_CHANGES_KEPT + 4}"


async def test_concurrent_updates_all_land_and_a_stale_form_is_refused(store_url: str) -> None:
    # two connections, as two processes (or two admins) would have
    one, two = await open_store(store_url), await open_store(store_url)
    try:
        def add(n: int) -> Callable[[dict | None], dict]:
            return lambda value: {"items": [*(value or {}).get("items", []), n]}

        await asyncio.gather(
            *(
                (one if n % 2 else two).update_guild_settings(GUILD, "server", add(n), actor_id=n, summary=f"+{n}")
                for n in range(4)
            )
        )
        stored = await one.load_guild_settings(GUILD, "server")
        assert sorted(stored.value["items"]) == list(range(4))  # none lost
        assert stored.version == 4
        with pytest.raises(SettingsConflictError) as refused:
            await two.update_guild_settings(
                GUILD, "server", lambda _: {"items": []}, actor_id=1, summary="stale form", expected_version=3
            )
        assert refused.value.current.version == 4
        assert (await one.load_guild_settings(GUILD, "server")).value == stored.value
    finally:
        await one.close()
        await two.close()


async def test_audit_records_newest_first_per_guild(store: Store) -> None:
    now = time.time()
    records = [
        AuditRecord("verdict", "scam", "log", 2, 1, 2, 3, created_at=now - 40 * 86400),
        AuditRecord("verdict", "scam", "delete", 3, 1, 4, 3, created_at=now - 3 * 86400,
                    detail={"reason": "fake giveaway", "rule": "no scams"}),
        AuditRecord("verdict", "scam", "delete", 3, 1, 5, 3, created_at=now - 2 * 86400),
        AuditRecord("action", "scam", "timeout", 3, 1, 5, 3, actor_id=9, created_at=now - 86400),
        AuditRecord("verdict", "none", "none", created_at=now - 10),
    ]
    for record in records:
        await store.add_audit(GUILD, record)
    await store.add_audit(GUILD + 1, records[-1])

    assert await store.audit_records(GUILD, since=now - 7 * 86400, limit=None) == records[:0:-1]
    assert await store.audit_records(GUILD, since=now - 7 * 86400, limit=2) == [records[4], records[3]]
    assert await store.audit_records(GUILD, since=0, limit=None) == records[::-1]
    assert await store.audit_records(GUILD + 1, since=0) == [records[-1]]
    assert await store.audit_records(GUILD + 2, since=0) == []


async def test_cache_values_expire(store: Store) -> None:
    await store.cache_set("verdict:1", "abc", {"flagged": False}, ttl=0.3)
    await store.cache_set("verdict:1", "long", {"flagged": True}, ttl=60)
    assert await store.cache_get("verdict:1", "abc") == {"flagged": False}
    assert await store.cache_get("verdict:2", "abc") is None

    async def expired() -> bool:
        return await store.cache_get("verdict:1", "abc") is None

    await wait_for(expired)
    assert await store.cache_get("verdict:1", "long") == {"flagged": True}
    await store.cache_set("verdict:1", "long", {"flagged": False}, ttl=60)  # replaces the value
    assert await store.cache_get("verdict:1", "long") == {"flagged": False}


async def test_a_claim_is_taken_once_until_it_expires_or_is_released(store: Store) -> None:
    assert await store.claim("reply", "1001", ttl=60)
    assert not await store.claim("reply", "1001", ttl=60)
    assert await store.claim("moderation", "1001", ttl=60)  # another kind of work on the same message
    assert await store.claim("reply", "1002", ttl=0.3)
    await store.release("reply", "1001")
    await store.release("reply", "never-claimed")
    assert await store.claim("reply", "1001", ttl=60)

    async def expired() -> bool:
        return await store.claim("reply", "1002", ttl=60)

    await wait_for(expired)
    assert not await store.claim("reply", "1002", ttl=60)


async def test_concurrent_claims_from_several_processes_give_it_to_exactly_one(store_url: str) -> None:
    stores = [await open_store(store_url) for _ in range(4)]  # four connections, as four bot processes
    try:
        for key in ("a", "b", "c"):
            taken = await asyncio.gather(*(s.claim("interaction", key, ttl=60) for s in stores for _ in range(3)))
            assert taken.count(True) == 1, key
    finally:
        for opened in stores:
            await opened.close()


async def test_a_notification_reaches_listeners_in_every_process(store_url: str) -> None:
    async with await open_store(store_url) as here, await open_store(store_url) as there:
        await here.notify("guild-settings", "before anyone listened")
        async with there.listen("guild-settings") as heard, here.listen("guild-settings") as heard_here:
            await here.notify("elsewhere", "not for them")
            await here.notify("guild-settings", "42")
            await there.notify("guild-settings", "43")
            async with asyncio.timeout(POLL_LIMIT):
                assert [await anext(heard), await anext(heard)] == ["42", "43"]
                assert [await anext(heard_here), await anext(heard_here)] == ["42", "43"]


async def test_claims_survive_close_and_reopen(store_url: str) -> None:
    async with await open_store(store_url) as first:
        assert await first.claim("notice", "333:manage_messages", ttl=60)
    async with await open_store(store_url) as second:
        assert not await second.claim("notice", "333:manage_messages", ttl=60)


def test_sqlite_urls() -> None:
    assert sqlite_path("sqlite:///data/glimpse.db") == str(PROJECT_DIR / "data" / "glimpse.db")
    assert sqlite_path("sqlite:////var/lib/glimpse.db") == "/var/lib/glimpse.db"
    assert sqlite_path("sqlite:///:memory:") == ":memory:"
    for bad in ("sqlite://", "sqlite:///", "postgres:///x"):
        with pytest.raises(ValueError):
            sqlite_path(bad)


async def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        await open_store("postgres://localhost/db")


async def test_sqlite_in_memory_works() -> None:
    async with await open_store("sqlite:///:memory:") as store:
        assert await exchange(store, CHANNEL, 1)
        assert len(await store.history(CHANNEL)) == 2


async def test_sqlite_file_is_created_with_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "glimpse.db"
    store = await open_store(f"sqlite:///{path}")
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaTooNewError):
        await open_store(f"sqlite:///{path}")


async def test_sqlite_a_version_1_database_upgrades_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "glimpse.db"
    with sqlite3.connect(path) as conn:  # a database as the first release left it
        conn.executescript(f"{MIGRATIONS[0]}; PRAGMA user_version = 1;")
        conn.execute(
            "INSERT INTO turns (channel_id, role, author_name, author_id, text, images, created_at, message_id)"
            " VALUES (?, 'user', 'bob', 3, 'old', '[]', ?, 3)",
            (CHANNEL, T0),
        )
        conn.execute(
            "INSERT INTO cache (namespace, key, value, expires_at, phash) VALUES ('ns', 'k', '{\"v\": 1}', ?, 5)",
            (time.time() + 60,),
        )
    async with await open_store(f"sqlite:///{path}") as store:
        assert [t.text for t in await store.history(CHANNEL)] == ["old"]
        assert await store.cache_get("ns", "k") == {"v": 1}
        await store.cache_set("ns", "k", {"v": 2}, ttl=60)
        assert await store.cache_get("ns", "k") == {"v": 2}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert "phash" not in {row[1] for row in conn.execute("PRAGMA table_info(cache)")}


async def test_sqlite_replies_noted_before_version_8_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "glimpse.db"
    with sqlite3.connect(path) as conn:  # a reply could be about one message only
        conn.executescript("; ".join(MIGRATIONS[:7]) + "; PRAGMA user_version = 7;")
        conn.execute("INSERT INTO replies VALUES (5001, 1001, ?, ?)", (CHANNEL, time.time()))
    async with await open_store(f"sqlite:///{path}") as store:
        assert await store.replies_about(1001, CHANNEL) == (5001,)
        await store.add_replies(9001, CHANNEL, [5001])
        assert await store.replies_about(9001, CHANNEL) == (5001,)


async def test_sqlite_meters_of_version_8_keep_their_reservations_and_new_ones_are_leases(tmp_path: Path) -> None:
    path = tmp_path / "glimpse.db"
    with sqlite3.connect(path) as conn:  # reservations were a bare count: an old process may still settle it
        conn.executescript("; ".join(MIGRATIONS[:8]) + "; PRAGMA user_version = 8;")
        conn.execute("INSERT INTO meters (day, key, spent, reserved) VALUES (?, 'member:1:7', 100, 300)", (DAY,))
    async with await open_store(f"sqlite:///{path}") as store:
        meter = [("member:1:7", 1000)]
        assert await store.meter_levels(DAY, ["member:1:7"]) == {"member:1:7": 400}
        assert await store.reserve(DAY, meter, 600, lease("new"), now=NOON) is None
        assert await store.admit(DAY, meter, None, now=NOON + LEASE) is None  # only the new one lapses
        assert await store.meter_levels(DAY, ["member:1:7"]) == {"member:1:7": 400}


async def test_sqlite_reservations_of_version_9_are_leases_still(tmp_path: Path) -> None:
    path = tmp_path / "glimpse.db"
    with sqlite3.connect(path) as conn:  # one row per reservation and meter
        conn.executescript("; ".join(MIGRATIONS[:9]) + "; PRAGMA user_version = 9;")
        for key in ("member:1:7", "guild:1"):
            conn.execute("INSERT INTO meters (day, key, reserved) VALUES (?, ?, 900)", (DAY, key))
            conn.execute("INSERT INTO reservations VALUES ('crashed', ?, ?, 500, ?)", (DAY, key, NOON + LEASE))
            conn.execute("INSERT INTO reservations VALUES ('running', ?, ?, 400, ?)", (DAY, key, NOON + 2 * LEASE))
    async with await open_store(f"sqlite:///{path}") as store:
        keys = ["member:1:7", "guild:1"]
        assert await store.admit(DAY, [("member:1:7", 900)], None, now=NOON + LEASE) is None  # "crashed" lapsed
        assert await store.meter_levels(DAY, keys) == {"member:1:7": 400, "guild:1": 400}
        assert await store.settle(DAY, keys, Lease("running", NOON + 2 * LEASE), None)
        assert await store.meter_levels(DAY, keys) == {"member:1:7": 0, "guild:1": 0}


def disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_sqlite_purge_gives_the_space_back(tmp_path: Path) -> None:
    path = tmp_path / "glimpse.db"
    async with await open_store(f"sqlite:///{path}") as store:
        for n in range(20):
            big = Prepared(n.to_bytes(2, "big") * 50_000)
            await exchange(store, n, n, big)
        full = disk_size(path)
        assert await store.forget(3) == 2
        assert await store.purge(time.time()) == 38
        assert disk_size(path) < full / 10


def test_store_options_from_settings() -> None:
    from bot.settings import Settings

    env = {"DISCORD_TOKEN": "t", "VLM_API_KEY": "k", "MEMORY_RETENTION_DAYS": "2", "MEMORY_MAX_TURNS": "300"}
    options = StoreOptions.from_settings(Settings.from_env(env))
    assert (options.keep_turns, options.retention_seconds) == (300, 2 * 86400)


async def test_sqlite_settings_written_before_versions_migrate_as_version_one(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the schema of the first release, with a record in it
        conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        conn.execute("INSERT INTO guild_settings VALUES (?, 'moderation', '{\"rules\": \"x\"}', 0)", (GUILD,))
    async with await open_store(f"sqlite:///{path}") as store:
        assert await store.load_guild_settings(GUILD, "moderation") == VersionedSettings({"rules": "x"}, 1)
        with pytest.raises(SettingsConflictError):
            await store.update_guild_settings(
                GUILD, "moderation", lambda _: {}, actor_id=1, summary="stale", expected_version=0
            )
        stored = await store.update_guild_settings(
            GUILD, "moderation", lambda v: {**(v or {}), "on": True}, actor_id=1, summary="on"
        )
        assert stored == VersionedSettings({"rules": "x", "on": True}, 2)


async def test_purge_drops_audit_older_than_its_retention_even_on_a_quiet_server(store_url: str) -> None:
    now = time.time()
    store = await open_store(store_url, StoreOptions(audit_retention_seconds=100 * 86400))
    old = AuditRecord("verdict", "scam", "log", created_at=now - 50 * 86400)
    recent = AuditRecord("verdict", "none", "none", created_at=now - 86400)
    await store.add_audit(GUILD, old)
    await store.add_audit(GUILD, recent)
    await store.close()

    # AUDIT_RETENTION_DAYS lowered to 10 and a restart; nothing is moderated on that server since.
    store = await open_store(store_url, StoreOptions(audit_retention_seconds=10 * 86400))
    try:
        await store.purge(now - 30 * 86400)
        assert await store.audit_records(GUILD, since=0, limit=None) == [recent]
    finally:
        await store.close()


async def test_audit_tally_counts_in_the_store_what_stats_needs(store: Store) -> None:
    now = time.time()
    records = [
        AuditRecord("verdict", "scam", "delete", 3, detail={"categories": ["scam", "nsfw"], "cached": False},
                    created_at=now - 86400),
        AuditRecord("verdict", "scam", "delete", 3, detail={"categories": ["scam", "nsfw"], "cached": True},
                    created_at=now - 2 * 86400),
        AuditRecord("verdict", "scam", "delete", 3, detail={"categories": ["scam", "nsfw"], "cached": True},
                    created_at=now - 3 * 86400),
        AuditRecord("verdict", "none", "none", detail={"categories": []}, created_at=now - 10),
        AuditRecord("action", "scam", "timeout", actor_id=9, created_at=now - 10),
        AuditRecord("action", "scam", "delete", created_at=now - 10),
        AuditRecord("error", "", "missing_permission", created_at=now - 10),
        AuditRecord("verdict", "scam", "log", detail={"categories": ["scam"]}, created_at=now - 40 * 86400),
    ]
    for record in records:
        await store.add_audit(GUILD, record)
    await store.add_audit(GUILD + 1, records[0])

    expected: dict[AuditGroup, int] = {}
    for record in records[:-1]:
        expected[AuditGroup.of(record)] = expected.get(AuditGroup.of(record), 0) + 1
    assert await store.audit_tally(GUILD, now - 30 * 86400) == expected
    cached = AuditGroup("verdict", "scam", "delete", False, True, ("scam", "nsfw"))
    assert expected[cached] == 2
    assert AuditGroup("action", "scam", "timeout", True, False) in expected
    assert sum((await store.audit_tally(GUILD, 0)).values()) == len(records)
    assert await store.audit_tally(GUILD + 2, 0) == {}


async def test_an_exchange_asked_before_a_forget_marker_is_not_stored(store: Store) -> None:
    marker = ("chat-forgotten", str(CHANNEL))
    big = 1_577_423_178_710_384_726  # snowflakes exceed a Lua number's exact range
    question, reply = turn(1, image(1), mid=big), answer(1, mid=None)
    await store.cache_set(*marker, {"snowflake": big + 1}, ttl=60)
    with pytest.raises(ExchangeForgotten):
        await store.append_exchange(CHANNEL, question, reply, [image(1)], forget_marker=marker)
    assert await store.history(CHANNEL) == [] and await store.get_images([image(1).sha256]) == {}

    later = turn(2, mid=big + 2)
    assert await store.append_exchange(CHANNEL, later, answer(2, mid=None), forget_marker=marker)
    other = ("chat-forgotten", str(CHANNEL + 1))  # another channel's marker: not set
    assert await store.append_exchange(CHANNEL + 1, question, reply, [image(1)], forget_marker=other)
    assert who(await store.history(CHANNEL)) == [("user", 2), ("assistant", 2)]
# -- spending (bot/guard): rate events, daily meters with reservations, usage rows ----------------

DAY = "2026-12-01"
NOON = 1_796_126_400.0  # 2026-12-01 12:00 UTC
LEASE = 600.0


def lease(name: str, at: float = NOON) -> Lease:
    """A reservation named ``name``, made at ``at``, whose lease lapses :data:`LEASE` seconds later."""
    return Lease(name, at + LEASE)


async def test_an_admission_counts_the_rate_within_its_window(store: Store) -> None:
    rate = RateLimit("user:1", limit=2, window=60)

    async def admit(at: float, which: RateLimit = rate) -> NotAdmitted | None:
        return await store.admit(DAY, [], which, now=NOON + at)

    assert [await admit(n) for n in (0, 1)] == [None, None]
    assert await admit(2) == NotAdmitted(slot_frees_at=NOON + 60)  # the first frees a slot
    assert await admit(2, RateLimit("user:2", limit=2, window=60)) is None  # another member
    assert await admit(60) is None  # the first left the window
    assert await admit(61) is None
    assert await admit(62) == NotAdmitted(slot_frees_at=NOON + 120)
    assert await store.admit(DAY, [], None, now=NOON + 62) is None  # no rate: nothing to count


async def test_an_admission_is_refused_by_a_used_up_meter_and_then_counts_no_rate(store: Store) -> None:
    meters = [("member:1:7", 1000), ("guild:1", 5000), ("mod:1", 0)]
    rate = RateLimit("user:7", limit=1, window=60)
    assert await store.reserve(DAY, [("member:1:7", 1000)], 999, lease("a"), now=NOON) is None
    assert await store.reserve(DAY, [("mod:1", 0)], 10**9, lease("b"), now=NOON) is None  # 0: never refused
    assert await store.admit(DAY, meters, None, now=NOON) is None  # 1 token left: admitted
    assert await store.reserve(DAY, [("member:1:7", 1000), ("guild:1", 5000)], 1, lease("c"), now=NOON) is None
    assert await store.admit(DAY, meters, rate, now=NOON) == NotAdmitted(meter="member:1:7")
    assert await store.admit("2026-12-02", meters, None, now=NOON + 86400) is None  # a new day, a new budget
    assert await store.meter_levels(DAY, ["member:1:7", "guild:1"]) == {"member:1:7": 1000, "guild:1": 1}

    assert await store.settle(DAY, ["member:1:7"], lease("a"), None)  # released: room again on the first day
    assert await store.admit(DAY, meters, rate, now=NOON + 1) is None  # its rate slot was not taken before
    assert await store.admit(DAY, [("mod:1", 10**9)], rate, now=NOON + 2) == NotAdmitted(meter="mod:1")  # at it
    assert await store.admit(DAY, meters, rate, now=NOON + 2) == NotAdmitted(slot_frees_at=NOON + 61)


async def test_a_reservation_is_all_or_nothing_and_settles_into_spent_and_usage(store: Store) -> None:
    meters = [("member:1:7", 1000), ("guild:1", 5000)]
    keys = ["member:1:7", "guild:1"]
    assert await store.reserve(DAY, meters, 600, lease("a"), now=NOON) is None
    levels = await store.meter_levels(DAY, ["member:1:7", "guild:1", "guild:2"])
    assert levels == {"member:1:7": 600, "guild:1": 600, "guild:2": 0}
    assert await store.reserve(DAY, meters, 500, lease("b"), now=NOON) == "member:1:7"  # 1,100 > 1,000
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 600, "guild:1": 600}  # nothing reserved
    assert not await store.settle(DAY, keys, lease("b"), None)  # the refused one holds nothing
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 600, "guild:1": 600}
    usage = UsageRow(DAY, 1, 7, "chat", prompt_tokens=120, completion_tokens=30, requests=1)
    assert await store.settle(DAY, keys, lease("a"), usage)
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 150, "guild:1": 150}
    assert await store.reserve(DAY, meters, 850, lease("c"), now=NOON) is None  # exactly to the limit
    assert await store.settle(DAY, keys, lease("c"), None)  # released: the request failed
    assert not await store.settle(DAY, keys, lease("c"), None)  # settled once: a second time releases nothing
    assert await store.meter_levels(DAY, ["member:1:7"]) == {"member:1:7": 150}
    assert await store.reserve(DAY, [("mod:1", 0)], 10**9, lease("d"), now=NOON) is None  # 0: never refused
    assert await store.usage(1, DAY, DAY) == [usage]
    await store.settle(DAY, keys, None, usage)
    assert await store.usage(1, DAY, DAY, user_id=7) == [
        UsageRow(DAY, 1, 7, "chat", prompt_tokens=240, completion_tokens=60, requests=2)
    ]
    assert await store.usage(1, DAY, DAY, user_id=8) == []


async def test_a_settlement_counts_on_meters_nobody_reserved_on(store: Store) -> None:
    """What the guard carries into the store after an outage: usage counted in the process meanwhile."""
    usage = UsageRow(DAY, 1, 9, "chat", prompt_tokens=100, completion_tokens=50, requests=1)
    assert not await store.settle(DAY, ["member:1:9", "guild:1"], None, usage)
    assert await store.meter_levels(DAY, ["member:1:9", "guild:1"]) == {"member:1:9": 150, "guild:1": 150}
    assert await store.reserve(DAY, [("member:1:9", 1000)], 851, lease("a"), now=NOON) == "member:1:9"  # 150 + 851
    assert await store.usage(1, DAY, DAY) == [usage]
    await store.settle(DAY, ["member:1:10"], None, None)  # a release of nothing changes nothing
    assert await store.meter_levels(DAY, ["member:1:10"]) == {"member:1:10": 0}


async def test_meters_are_per_day_and_usage_is_read_by_range(store: Store) -> None:
    assert await store.reserve(DAY, [("guild:1", 100)], 100, lease("a"), now=NOON) is None
    assert await store.reserve(DAY, [("guild:1", 100)], 1, lease("b"), now=NOON) == "guild:1"
    tomorrow = lease("c", NOON + 86400)
    assert await store.reserve("2026-12-02", [("guild:1", 100)], 100, tomorrow, now=NOON + 86400) is None
    for day, feature in (("2026-11-30", "ocr"), (DAY, "chat"), ("2026-12-02", "describe")):
        await store.settle(day, ["guild:1"], None, UsageRow(day, 1, 0, feature, 10, 5, 1))
    assert [row.feature for row in await store.usage(1, DAY, "2026-12-02")] == ["chat", "describe"]
    assert [row.day for row in await store.usage(1, "2026-11-01", "2026-12-31")] == ["2026-11-30", DAY, "2026-12-02"]
    assert await store.usage(2, "2026-11-01", "2026-12-31") == []


async def test_a_reservation_whose_lease_lapsed_is_released_by_the_next_admission_or_reservation(
    store: Store,
) -> None:
    member, server = [("member:1:7", 1000)], [("guild:1", 1000)]
    assert await store.reserve(DAY, member, 1000, lease("crashed"), now=NOON) is None  # never settled
    assert await store.reserve(DAY, server, 1000, lease("also-crashed"), now=NOON) is None
    before = NOON + LEASE - 1
    assert await store.admit(DAY, member, None, now=before) == NotAdmitted(meter="member:1:7")
    assert await store.reserve(DAY, server, 1, lease("early", before), now=before) == "guild:1"
    assert await store.meter_levels(DAY, ["member:1:7", "guild:1"]) == {"member:1:7": 1000, "guild:1": 1000}
    # What is left, as /usage shows it, already leaves out a lapsed lease (still on the meter until it would refuse):
    assert await store.meter_levels(DAY, ["member:1:7", "guild:1"], now=before) == {"member:1:7": 1000, "guild:1": 1000}
    assert await store.meter_levels(DAY, ["member:1:7", "guild:1"], now=NOON + LEASE) == {"member:1:7": 0, "guild:1": 0}

    assert await store.admit(DAY, member, None, now=NOON + LEASE) is None  # lapsed: its tokens are back
    assert await store.meter_levels(DAY, ["member:1:7", "guild:1"]) == {"member:1:7": 0, "guild:1": 0}
    after = NOON + LEASE + 1
    assert await store.reserve(DAY, server, 1000, lease("next", after), now=after) is None  # room for a whole one
    # The day's leases are swept whoever asks: the server's lapsed one went with the member's admission.
    assert await store.meter_levels(DAY, ["guild:1"]) == {"guild:1": 1000}


async def test_a_reservation_settled_after_its_lease_lapsed_counts_the_spend_once(store: Store) -> None:
    meters, keys = [("member:1:7", 1000), ("guild:1", 5000)], ["member:1:7", "guild:1"]
    assert await store.reserve(DAY, meters, 800, lease("slow"), now=NOON) is None
    after = NOON + LEASE
    assert await store.reserve(DAY, meters, 900, lease("next", after), now=after) is None  # "slow" lapsed
    usage = UsageRow(DAY, 1, 7, "chat", prompt_tokens=200, completion_tokens=100, requests=1)
    assert not await store.settle(DAY, keys, lease("slow"), usage)  # it held nothing any more: spend only
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 1200, "guild:1": 1200}  # 900 held + 300
    assert await store.settle(DAY, keys, lease("next", after), None)
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 300, "guild:1": 300}  # never below the spend
    assert await store.usage(1, DAY, DAY) == [usage]


async def test_a_reservation_settled_in_time_is_not_released_again_when_its_lease_ends(store: Store) -> None:
    meters, keys = [("member:1:7", 1000)], ["member:1:7"]
    assert await store.reserve(DAY, meters, 600, lease("a"), now=NOON) is None
    assert await store.reserve(DAY, meters, 400, lease("b", NOON + 1), now=NOON + 1) is None
    assert await store.settle(DAY, keys, lease("a"), UsageRow(DAY, 1, 7, "chat", 100, 50, 1))
    at_a_s_end = NOON + LEASE + 0.5
    assert await store.reserve(DAY, meters, 451, lease("c", at_a_s_end), now=at_a_s_end) == "member:1:7"  # 150 + 400
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 550}
    at_b_s_end = NOON + 1 + LEASE
    assert await store.reserve(DAY, meters, 850, lease("d", at_b_s_end), now=at_b_s_end) is None  # "b" lapsed
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 1000}  # 150 spent + "d"'s 850, nothing less


async def test_an_extended_lease_lapses_at_its_new_expiry_not_its_old_one(store: Store) -> None:
    meters, keys = [("member:1:7", 1000), ("guild:1", 5000)], ["member:1:7", "guild:1"]
    assert await store.reserve(DAY, meters, 800, lease("long"), now=NOON) is None  # a slow answer
    assert await store.reserve(DAY, meters, 100, lease("short"), now=NOON) is None  # one whose process died
    halfway = NOON + LEASE / 2
    assert await store.extend_lease(DAY, lease("long"), halfway + LEASE)
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 900, "guild:1": 900}  # its tokens, no more

    at_old_end = NOON + LEASE
    assert await store.meter_levels(DAY, keys, now=at_old_end) == {"member:1:7": 800, "guild:1": 800}
    # The sweep this refusal makes releases the unextended one only: 800 held + 201 > 1,000.
    assert await store.reserve(DAY, meters, 201, lease("next", at_old_end), now=at_old_end) == "member:1:7"
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 800, "guild:1": 800}
    assert not await store.settle(DAY, keys, lease("short"), None)  # swept: nothing left to release

    at_new_end = halfway + LEASE
    assert await store.reserve(DAY, meters, 201, lease("next", at_new_end - 1), now=at_new_end - 1) == "member:1:7"
    assert await store.reserve(DAY, meters, 1000, lease("whole", at_new_end), now=at_new_end) is None  # now it lapsed
    assert not await store.settle(DAY, keys, Lease("long", at_new_end), None)
    assert await store.meter_levels(DAY, keys) == {"member:1:7": 1000, "guild:1": 1000}


async def test_extending_a_settled_or_released_lease_changes_nothing(store: Store) -> None:
    meters, keys = [("member:1:7", 1000)], ["member:1:7"]
    other = [("member:1:8", 1000), ("guild:1", 5000)]
    assert await store.reserve(DAY, meters, 100, lease("settled"), now=NOON) is None
    assert await store.reserve(DAY, meters, 200, lease("lapsed"), now=NOON) is None
    assert await store.reserve(DAY, other, 300, lease("other", NOON + 1), now=NOON + 1) is None
    assert await store.settle(DAY, keys, lease("settled"), UsageRow(DAY, 1, 7, "chat", 40, 10, 1))
    assert not await store.extend_lease(DAY, lease("settled"), NOON + 2 * LEASE)
    assert not await store.extend_lease(DAY, lease("never-reserved"), NOON + 2 * LEASE)

    at_end = NOON + LEASE
    assert await store.reserve(DAY, meters, 950, lease("next", at_end), now=at_end) is None  # "lapsed" released
    assert not await store.extend_lease(DAY, lease("lapsed"), at_end + LEASE)
    levels = {"member:1:7": 1000, "member:1:8": 300, "guild:1": 300}
    assert await store.meter_levels(DAY, list(levels)) == levels  # 50 spent + 950; the other's 300
    assert not await store.settle(DAY, keys, Lease("lapsed", at_end + LEASE), None)  # not brought back
    assert not await store.settle(DAY, keys, lease("lapsed"), None)

    # An expiry no later than the one held changes nothing either; the other reservation kept its lease.
    assert not await store.extend_lease(DAY, lease("other", NOON + 1), NOON + 1 + LEASE)
    assert not await store.extend_lease(DAY, lease("other", NOON + 1), NOON + LEASE)
    assert await store.meter_levels(DAY, list(levels), now=NOON + 1 + LEASE) == levels | {"member:1:8": 0, "guild:1": 0}
    assert await store.settle(DAY, ["member:1:8", "guild:1"], lease("other", NOON + 1), None)
    assert await store.meter_levels(DAY, list(levels)) == levels | {"member:1:8": 0, "guild:1": 0}


_RESERVE_AND_DIE = """
import asyncio, os, signal, sys
from bot.store import Lease, open_store

async def main(url: str, day: str, now: float, lease: float) -> None:
    store = await open_store(url)
    assert await store.reserve(day, [("member:1:7", 1000)], 1000, Lease("crashed", now + lease), now=now) is None
    os.kill(os.getpid(), signal.SIGKILL)  # mid-request: never settled, never closed

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
"""


async def test_a_crashed_process_s_reservation_is_released_for_the_others_after_its_lease(store_url: str) -> None:
    async with await open_store(store_url) as survivor:
        crashed = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _RESERVE_AND_DIE, store_url, DAY, str(NOON), str(LEASE), cwd=PROJECT_DIR
        )
        assert await crashed.wait() == -signal.SIGKILL
        meter = [("member:1:7", 1000)]
        assert await survivor.admit(DAY, meter, None, now=NOON + 1) == NotAdmitted(meter="member:1:7")
        assert await survivor.reserve(DAY, meter, 1, lease("mine", NOON + 1), now=NOON + 1) == "member:1:7"
        assert await survivor.admit(DAY, meter, None, now=NOON + LEASE) is None
        assert await survivor.reserve(DAY, meter, 1000, lease("whole", NOON + LEASE), now=NOON + LEASE) is None


async def test_usage_rows_are_kept_for_their_retention(store: Store) -> None:
    old = UsageRow("2020-01-01", 1, 7, "chat", 10, 5, 1)
    recent = UsageRow(time.strftime("%Y-%m-%d", time.gmtime()), 1, 7, "chat", 10, 5, 1)
    for row in (old, recent):
        await store.settle(row.day, [], None, row)
    await store.purge(time.time() - 86400)
    assert await store.usage(1, "2019-12-01", "2020-02-01") == []
    assert await store.usage(1, recent.day, recent.day) == [recent]


async def test_twenty_concurrent_reservations_for_a_budget_of_five_let_five_through(store_url: str) -> None:
    """Two stores (two connections: as two bot processes) race for one member's budget."""
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        meters = [("member:1:7", 5 * 1000 + 999), ("guild:1", 0)]
        results = await asyncio.gather(
            *((first if n % 2 else second).reserve(DAY, meters, 1000, lease(f"r{n}"), now=NOON) for n in range(20))
        )
        assert results.count(None) == 5
        assert set(results) == {None, "member:1:7"}
        assert await first.meter_levels(DAY, ["member:1:7", "guild:1"]) == {"member:1:7": 5000, "guild:1": 5000}
    finally:
        await first.close()
        await second.close()


async def test_twenty_concurrent_admissions_at_a_rate_of_five_let_five_through(store_url: str) -> None:
    """Two stores (two connections: as two bot processes) race for one member's per-minute rate."""
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        rate = RateLimit("user:7", limit=5, window=60)
        meters = [("member:1:7", 1000), ("guild:1", 0)]
        results = await asyncio.gather(
            *((first if n % 2 else second).admit(DAY, meters, rate, now=NOON + n / 100) for n in range(20))
        )
        admitted = [n for n, result in enumerate(results) if result is None]
        assert len(admitted) == 5
        frees_at = pytest.approx(NOON + admitted[0] / 100 + 60)  # when the oldest admitted leaves the window
        assert [result for result in results if result is not None] == [NotAdmitted(slot_frees_at=frees_at)] * 15
    finally:
        await first.close()
        await second.close()


# -- replies: the bot's messages about a message, and the exchange of a deleted question ----------------


async def test_replies_are_noted_per_source_and_taken_once_when_it_is_deleted(store: Store) -> None:
    await store.add_replies(1001, CHANNEL, [5002, 5001])
    await store.add_replies(1001, CHANNEL, [5001, 5003])  # a continuation; noting one twice is a no-op
    await store.add_replies(2001, OTHER, [6001])
    assert await store.replies_about(1001, CHANNEL) == (5001, 5002, 5003)
    assert await store.replies_about(1001, OTHER) == ()

    assert await store.messages_deleted([1001, 7777]) == [Replies(1001, CHANNEL, (5001, 5002, 5003))]
    assert await store.messages_deleted([1001]) == []  # taken once
    assert await store.replies_about(1001, CHANNEL) == ()
    assert await store.messages_deleted([5001]) == []  # a reply taken with its source is no one's any more
    assert await store.replies_about(2001, OTHER) == (6001,)


async def test_a_deleted_reply_leaves_its_sources_record(store: Store) -> None:
    await store.add_replies(1001, CHANNEL, [5001, 5002])
    assert await store.messages_deleted([5002]) == []
    assert await store.replies_about(1001, CHANNEL) == (5001,)
    # A purge of the question and its reply at once still hands the reply over (the caller knows it is gone).
    assert await store.messages_deleted([5001, 1001]) == [Replies(1001, CHANNEL, (5001,))]


async def test_a_reply_about_two_messages_goes_with_either(store: Store) -> None:
    # a context menu's answer: about the message it was used on, and its own interaction
    await store.add_replies(1001, CHANNEL, [5001, 5002])
    await store.add_replies(9001, CHANNEL, [5001, 5002])
    assert await store.messages_deleted([1001]) == [Replies(1001, CHANNEL, (5001, 5002), others=(9001,))]
    assert await store.replies_about(9001, CHANNEL) == (5001, 5002)  # until their own deletion is told
    assert await store.messages_deleted([5001, 5002]) == []
    assert await store.replies_about(9001, CHANNEL) == ()


async def test_a_deletion_told_to_two_processes_hands_the_replies_to_one(store_url: str) -> None:
    async with await open_store(store_url) as first, await open_store(store_url) as second:
        await first.add_replies(1001, CHANNEL, [5001, 5002])
        taken = await asyncio.gather(*(s.messages_deleted([1001]) for s in (first, second) for _ in range(3)))
        assert sorted(taken, key=len) == [[], [], [], [], [], [Replies(1001, CHANNEL, (5001, 5002))]]


async def test_replies_survive_a_restart_and_are_kept_for_the_retention(store_url: str) -> None:
    async with await open_store(store_url, StoreOptions(retention_seconds=1)) as first:
        await first.add_replies(1001, CHANNEL, [5001])
    async with await open_store(store_url, StoreOptions(retention_seconds=1)) as store:
        assert await store.replies_about(1001, CHANNEL) == (5001,)
        await store.purge(time.time() - 3600)
        assert await store.replies_about(1001, CHANNEL) == (5001,)

        async def gone() -> bool:  # Redis lets the key expire; SQLite's purge takes what is older
            await store.purge(time.time() - 1)
            return await store.replies_about(1001, CHANNEL) == ()

        await wait_for(gone)


async def test_remove_exchange_takes_the_question_and_its_answer_and_unshared_images(store: Store) -> None:
    shared, own = image(1), image(2)
    await exchange(store, CHANNEL, 1, shared, own)
    await exchange(store, CHANNEL, 2, own, blobs=())
    await exchange(store, OTHER, 3, shared, blobs=())
    await exchange(store, CHANNEL, 4)  # no images

    assert await store.remove_exchange(CHANNEL, 1004) == 2
    assert await store.remove_exchange(CHANNEL, 1001) == 2
    assert who(await store.history(CHANNEL)) == [("user", 2), ("assistant", 2)]
    assert set(await store.get_images([shared.sha256, own.sha256])) == {shared.sha256, own.sha256}
    assert await store.remove_exchange(CHANNEL, 1001) == 0
    assert await store.remove_exchange(OTHER, 1002) == 0  # another channel's question

    assert await store.remove_exchange(CHANNEL, 1002) == 2
    assert await store.history(CHANNEL) == []
    assert set(await store.get_images([shared.sha256, own.sha256])) == {shared.sha256}
    assert len(await store.history(OTHER)) == 2
