"""Who pays for a request and how much they may spend (bot/guard/limits.py): pure rules."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.guard import Actor, Limits, Purpose, Refusal, Scope, ServerLimits, charges, narrowed
from bot.guard.limits import days_back, month_start, next_midnight, utc_day

LIMITS = Limits(rate_user_per_minute=6, user_daily=50_000, guild_daily=1_000_000, dm_daily=20_000, moderation_daily=9)
GUILD, USER, ROLE = 10, 20, 30


def test_a_member_pays_from_their_own_and_the_servers_budget_and_takes_a_rate_slot() -> None:
    plan = charges(Actor(Purpose.CHAT, user_id=USER, guild_id=GUILD), LIMITS)
    assert [(m.key, m.limit, m.scope) for m in plan.meters] == [
        ("member:10:20", 50_000, Scope.MEMBER),
        ("guild:10", 1_000_000, Scope.SERVER),
    ]
    assert (plan.rate_key, plan.rate_limit) == ("user:20", 6)


def test_dms_have_their_own_budget() -> None:
    plan = charges(Actor(Purpose.DESCRIBE, user_id=USER), LIMITS)
    assert [(m.key, m.limit) for m in plan.meters] == [("dm:20", 20_000)]
    assert plan.rate_key == "user:20"


def test_alt_text_counts_against_the_server_only_and_moderation_against_its_own_budget() -> None:
    alt = charges(Actor(Purpose.ALT_TEXT, user_id=USER, guild_id=GUILD), LIMITS)
    assert [m.key for m in alt.meters] == ["guild:10"] and alt.rate_key is None
    moderation = charges(Actor(Purpose.MODERATION, guild_id=GUILD), LIMITS)
    assert [(m.key, m.limit) for m in moderation.meters] == [("mod:10", 9)] and moderation.rate_key is None


def test_an_exempt_role_lifts_the_members_limits_but_not_the_servers() -> None:
    server = ServerLimits(exempt_role_ids=frozenset({ROLE}))
    plan = charges(Actor(Purpose.OCR, user_id=USER, guild_id=GUILD, role_ids=frozenset({ROLE, 99})), LIMITS, server)
    assert [(m.key, m.limit) for m in plan.meters] == [("member:10:20", 0), ("guild:10", 1_000_000)]
    assert plan.rate_key is None
    other = charges(Actor(Purpose.OCR, user_id=USER, guild_id=GUILD, role_ids=frozenset({99})), LIMITS, server)
    assert other.meter("member:10:20").limit == 50_000 and other.rate_key == "user:20"


def test_a_servers_numbers_stay_within_the_deployments() -> None:
    lower = charges(Actor(Purpose.CHAT, user_id=USER, guild_id=GUILD), LIMITS, ServerLimits(1000, 5000))
    assert [m.limit for m in lower.meters] == [1000, 5000]
    higher = charges(Actor(Purpose.CHAT, user_id=USER, guild_id=GUILD), LIMITS, ServerLimits(10**9, 10**9))
    assert [m.limit for m in higher.meters] == [50_000, 1_000_000]


@pytest.mark.parametrize(
    ("deployment", "server", "effective"),
    [(100, None, 100), (100, 0, 100), (100, 50, 50), (100, 500, 100), (0, 500, 500), (0, None, 0)],
)
def test_narrowed(deployment: int, server: int | None, effective: int) -> None:
    assert narrowed(deployment, server) == effective


def test_server_limits_round_trip_through_json() -> None:
    limits = ServerLimits(user_daily=1000, guild_daily=None, exempt_role_ids=frozenset({3, 1}))
    assert limits.to_dict() == {"user_daily": 1000, "guild_daily": None, "exempt_role_ids": [1, 3]}
    assert ServerLimits.from_dict(limits.to_dict()) == limits


def test_utc_days() -> None:
    late = dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    assert utc_day(late) == "2026-12-31" and utc_day(late + 1) == "2027-01-01"
    assert next_midnight(late) == late + 1
    assert days_back(late, 3) == ["2026-12-29", "2026-12-30", "2026-12-31"]
    assert month_start(late) == "2026-12-01"


def test_refusal_lines_name_the_limit_and_when_it_resets() -> None:
    rate = Refusal(Scope.RATE, 6, 1_796_126_410.2).line()
    assert rate == "Slow down a little: at most 6 requests a minute. Try again <t:1796126411:R>."
    used = Refusal(Scope.MEMBER, 50_000, 1_796_169_600).line()
    assert used == (
        "You have used your daily token budget in this server (50,000 tokens). "
        "It resets at midnight UTC (<t:1796169600:R>)."
    )
    short = Refusal(Scope.SERVER, 1_000_000, 1_796_169_600, left=1200).line()
    assert short.startswith("This request needs more than the 1,200 tokens left of this server's daily token budget")


def test_a_servers_limits_live_in_its_settings_record() -> None:
    from bot.guild import GuildSettings, GuildSettingsError

    settings = GuildSettings().with_limits(member_daily=1000, exempt_role=ROLE)
    assert settings.limits == ServerLimits(user_daily=1000, exempt_role_ids=frozenset({ROLE}))
    assert GuildSettings.from_dict(settings.to_dict()) == settings
    reset = settings.with_limits(member_daily=0, exempt_role=ROLE, exempt=False)  # 0: the deployment's again
    assert reset.limits == ServerLimits()
    with pytest.raises(GuildSettingsError):
        GuildSettings(limits=ServerLimits(user_daily=-1))
