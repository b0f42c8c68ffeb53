"""Per-guild moderation settings (validation, stored form) and the automatic-action policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.moderation import (
    ALL_CATEGORIES,
    Action,
    Category,
    Decision,
    MissingPermissionNotices,
    ModerationSettings,
    ModerationSettingsError,
    Permission,
    Verdict,
    decide,
)
from bot.moderation.policy import RefusedDeletes
from bot.store import open_store

SCAM = Verdict(True, (Category.SCAM,), 2, "Fake giveaway.", "No scams.")


def settings_with(**actions: str) -> ModerationSettings:
    chosen = {1: Action.LOG, 2: Action.LOG, 3: Action.LOG}
    chosen.update({int(k[1:]): Action(v) for k, v in actions.items()})
    return ModerationSettings(watch_all_channels=True, actions=chosen, timeout_seconds=3600)


# --- settings --------------------------------------------------------------------------------------


def test_defaults_are_passive() -> None:
    settings = ModerationSettings()
    assert not settings.watch_all_channels and not settings.watched_channel_ids
    assert not settings.watches(123)
    assert set(settings.actions.values()) == {Action.LOG}
    assert settings.categories == ALL_CATEGORIES
    assert settings.detail == "low"
    assert settings.timeout_seconds == 3600


def test_round_trip_through_a_plain_json_dict() -> None:
    settings = ModerationSettings(
        watched_channel_ids=frozenset({111111111111111111, 222222222222222222}),
        mod_log_channel_id=333333333333333333,
        rules="1. Be nice.\n2. No NSFW.",
        categories=frozenset({Category.SEXUAL, Category.SCAM}),
        actions={1: Action.LOG, 2: Action.DELETE, 3: Action.DELETE_TIMEOUT},
        timeout_seconds=600,
        detail="high",
        cache_seconds=0,
    )
    stored = json.loads(json.dumps(settings.to_dict()))
    assert stored["watched_channel_ids"] == ["111111111111111111", "222222222222222222"]
    assert stored["actions"] == {"1": "log", "2": "delete", "3": "delete_timeout"}
    assert ModerationSettings.from_dict(stored) == settings
    assert hash(ModerationSettings.from_dict(stored)) == hash(settings)


def test_missing_fields_take_defaults_and_unknown_ones_are_ignored() -> None:
    assert ModerationSettings.from_dict({"version": 1}) == ModerationSettings()
    assert ModerationSettings.from_dict({"future_field": 1, "detail": "auto"}).detail == "auto"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"watch_all_channels": "yes"}, "watch_all_channels must be true or false"),
        ({"watched_channel_ids": ["12a"]}, "list of channel IDs"),
        ({"watched_channel_ids": ["0012"]}, "list of channel IDs"),
        ({"watched_channel_ids": "123"}, "list of channel IDs"),
        ({"watched_channel_ids": [True]}, "list of channel IDs"),
        ({"mod_log_channel_id": -5}, "must be a channel ID"),
        ({"rules": 5}, "rules must be text"),
        ({"rules": "x" * 4001}, "at most 4000 characters"),
        ({"categories": []}, "at least one category"),
        ({"categories": ["scam", "malware"]}, "unknown categories: malware"),
        ({"actions": {"1": "log", "2": "ban", "3": "log"}}, "map each severity"),
        ({"actions": {"1": "log", "2": "log"}}, "map each severity"),
        ({"timeout_seconds": 10}, "timeout must be between"),
        ({"timeout_seconds": 29 * 86400}, "timeout must be between"),
        ({"timeout_seconds": 60.5}, "whole number"),
        ({"detail": "ultra"}, "detail must be low, high or auto"),
        ({"cache_seconds": -1}, "cache window"),
    ],
)
def test_invalid_stored_values_are_named(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(ModerationSettingsError) as raised:
        ModerationSettings.from_dict(data)
    assert any(problem in line for line in raised.value.problems), raised.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ModerationSettingsError) as raised:
        ModerationSettings.from_dict({"detail": "ultra", "timeout_seconds": 1, "rules": 3})
    assert len(raised.value.problems) == 3


def test_direct_construction_and_replace_are_validated_too() -> None:
    with pytest.raises(ModerationSettingsError):
        ModerationSettings(actions={1: Action.LOG})
    settings = ModerationSettings()
    with pytest.raises(ModerationSettingsError):
        settings.replace(timeout_seconds=0)
    assert settings.replace(rules="  Be kind.  ").rules == "Be kind."


def test_setup_changes_keep_what_is_not_given() -> None:
    current = ModerationSettings(watched_channel_ids=frozenset({1, 2}), mod_log_channel_id=9, rules="Be kind.")
    updated = current.updated(
        add_channel_id=3,
        remove_channel_id=1,
        ignore=Category.SPAM,
        actions={1: None, 2: Action.DELETE, 3: None},
        timeout_seconds=600,
    )
    assert updated.watched_channel_ids == {2, 3} and updated.mod_log_channel_id == 9 and updated.rules == "Be kind."
    assert Category.SPAM not in updated.categories and updated.categories == ALL_CATEGORIES - {Category.SPAM}
    assert updated.actions == {1: current.actions[1], 2: Action.DELETE, 3: current.actions[3]}
    assert updated.timeout_seconds == 600 and updated.detail == current.detail
    assert current.updated() == current
    assert updated.updated(flag=Category.SPAM, watch_all_channels=True).categories == ALL_CATEGORIES
    with pytest.raises(ModerationSettingsError):
        current.updated(timeout_seconds=0)


def test_settings_are_immutable() -> None:
    settings = ModerationSettings()
    with pytest.raises(TypeError):
        settings.actions[1] = Action.DELETE  # type: ignore[index]


def test_watching_follows_parent_channels_for_threads() -> None:
    settings = ModerationSettings(watched_channel_ids=frozenset({10}))
    assert settings.watches(10)
    assert settings.watches(99, parent_id=10)
    assert not settings.watches(99, parent_id=11)
    assert ModerationSettings(watch_all_channels=True).watches(99)


def test_policy_fingerprint_changes_with_what_the_model_sees_only() -> None:
    base = ModerationSettings()
    assert base.replace(
        actions={1: Action.DELETE, 2: Action.DELETE, 3: Action.DELETE}
    ).policy_fingerprint() == (base.policy_fingerprint())
    assert base.replace(rules="No memes.").policy_fingerprint() != base.policy_fingerprint()
    assert (
        base.replace(categories=frozenset({Category.SPAM})).policy_fingerprint() != base.policy_fingerprint()
    )
    assert base.replace(detail="high").policy_fingerprint() != base.policy_fingerprint()


# --- decide ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("can_delete", [True, False])
@pytest.mark.parametrize("can_timeout", [True, False])
def test_clean_and_review_verdicts_never_act(can_delete: bool, can_timeout: bool) -> None:
    settings = settings_with(s1="delete_timeout", s2="delete_timeout", s3="delete_timeout")
    clean = Verdict(False, (), 0, "Fine.", None)
    review = Verdict.needs_review("not JSON")
    assert decide(clean, settings, bot_can_delete=can_delete, bot_can_timeout=can_timeout) == Decision(
        log=False
    )
    assert decide(review, settings, bot_can_delete=can_delete, bot_can_timeout=can_timeout) == Decision(log=True)


@pytest.mark.parametrize(
    ("action", "can_delete", "can_timeout", "delete", "timeout", "missing"),
    [
        ("log", True, True, False, None, set()),
        ("log", False, False, False, None, set()),
        ("delete", True, True, True, None, set()),
        ("delete", True, False, True, None, set()),
        ("delete", False, True, False, None, {Permission.MANAGE_MESSAGES}),
        ("delete", False, False, False, None, {Permission.MANAGE_MESSAGES}),
        ("delete_timeout", True, True, True, 3600, set()),
        ("delete_timeout", True, False, True, None, {Permission.MODERATE_MEMBERS}),
        ("delete_timeout", False, True, False, 3600, {Permission.MANAGE_MESSAGES}),
        (
            "delete_timeout",
            False,
            False,
            False,
            None,
            {Permission.MANAGE_MESSAGES, Permission.MODERATE_MEMBERS},
        ),
    ],
)
def test_flagged_verdicts_act_as_configured_and_permitted(
    action: str,
    can_delete: bool,
    can_timeout: bool,
    delete: bool,
    timeout: int | None,
    missing: set[Permission],
) -> None:
    decision = decide(SCAM, settings_with(s2=action), bot_can_delete=can_delete, bot_can_timeout=can_timeout)
    assert decision == Decision(
        log=True,
        configured=Action(action),
        delete=delete,
        timeout_seconds=timeout,
        missing=frozenset(missing),
    )


def test_the_action_follows_the_severity() -> None:
    settings = settings_with(s1="log", s2="delete", s3="delete_timeout")
    for severity, expected in ((1, Action.LOG), (2, Action.DELETE), (3, Action.DELETE_TIMEOUT)):
        verdict = Verdict(True, (Category.SPAM,), severity, "Spam.", None)
        assert decide(verdict, settings, bot_can_delete=True, bot_can_timeout=True).configured is expected


def test_a_verdict_outside_the_guild_categories_is_only_logged() -> None:
    settings = settings_with(s2="delete").replace(categories=frozenset({Category.SEXUAL}))
    decision = decide(SCAM, settings, bot_can_delete=True, bot_can_timeout=True)
    assert decision == Decision(log=True, configured=Action.LOG)


def test_describe_says_what_was_done_and_what_could_not_be() -> None:
    decision = decide(SCAM, settings_with(s2="delete_timeout"), bot_can_delete=True, bot_can_timeout=False)
    assert decision.describe() == (
        "Automatic action: message deleted. Could not fully delete + timeout: the bot lacks Timeout Members."
    )
    full = decide(SCAM, settings_with(s2="delete_timeout"), bot_can_delete=True, bot_can_timeout=True)
    assert full.describe() == "Automatic action: message deleted, author timed out for 1 h."


async def test_missing_permissions_are_reported_once_until_restored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'glimpse.db'}"
    async with await open_store(url) as store, await open_store(url) as other_process:
        notices, elsewhere = MissingPermissionNotices(store), MissingPermissionNotices(other_process)
        both = {Permission.MANAGE_MESSAGES, Permission.MODERATE_MEMBERS}
        assert await notices.to_report(1, {Permission.MANAGE_MESSAGES}) == {Permission.MANAGE_MESSAGES}
        assert await notices.to_report(1, {Permission.MANAGE_MESSAGES}) == frozenset()
        assert await elsewhere.to_report(1, both) == {Permission.MODERATE_MEMBERS}  # shared by processes
        assert await notices.to_report(2, both) == both  # per guild
        await elsewhere.restored(1, {Permission.MANAGE_MESSAGES})
        assert await notices.to_report(1, both) == {Permission.MANAGE_MESSAGES}
    async with await open_store(url) as restarted:
        assert await MissingPermissionNotices(restarted).to_report(1, both) == frozenset()


async def test_missing_permission_notices_fall_back_to_memory_while_the_store_is_down(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'glimpse.db'}")
    await store.close()  # every call fails from now on
    notices = MissingPermissionNotices(store)
    assert await notices.to_report(1, {Permission.MANAGE_MESSAGES}) == {Permission.MANAGE_MESSAGES}
    assert await notices.to_report(1, {Permission.MANAGE_MESSAGES}) == frozenset()
    await notices.restored(1, {Permission.MANAGE_MESSAGES})
    assert await notices.to_report(1, {Permission.MANAGE_MESSAGES}) == {Permission.MANAGE_MESSAGES}


def test_a_refused_delete_is_not_retried_until_the_cached_permissions_change() -> None:
    refused = RefusedDeletes()
    assert refused.may_try(1, 10, 0b1010)
    refused.refused(1, 10, 0b1010)
    assert not refused.may_try(1, 10, 0b1010)
    assert refused.may_try(1, 10, 0b1110)  # the permissions changed: worth one more try
    assert refused.may_try(1, 11, 0b1010) and refused.may_try(2, 10, 0b1010)  # other channels and guilds
