"""Exempt roles are part of the moderation settings: added and removed by /moderation setup, stored
and read back, validated."""

from __future__ import annotations

import pytest

from bot.moderation import ModerationSettings, ModerationSettingsError


def test_exempt_roles_are_added_removed_and_stored() -> None:
    settings = ModerationSettings().updated(exempt_role_id=111111111111111111)
    settings = settings.updated(exempt_role_id=222222222222222222)
    assert settings.exempt_role_ids == {111111111111111111, 222222222222222222}
    assert settings.exempts([5, 222222222222222222]) and not settings.exempts([5])
    settings = settings.updated(unexempt_role_id=111111111111111111)
    assert ModerationSettings.from_dict(settings.to_dict()) == settings
    assert settings.to_dict()["exempt_role_ids"] == ["222222222222222222"]
    assert ModerationSettings.from_dict({}).exempt_role_ids == frozenset()  # older records


def test_exempt_roles_must_be_role_ids() -> None:
    with pytest.raises(ModerationSettingsError, match="exempt roles"):
        ModerationSettings(exempt_role_ids=frozenset({-1}))
