"""`/settings describe`, `/settings access` and `/settings show`, end to end: an admin changes how
Glimpse works in the server from Discord, and the next message follows it."""

from __future__ import annotations

from bot.app import Glimpse
from bot.guild.policy import BLOCKED, NEEDS_MANAGE_SERVER, NOT_ALLOWED
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    assert_discord_refused_nothing,
    emulator_config,
    paced_like_emulator,
    png,
)
from tests.e2e.server_settings import (
    answer_of,
    answered,
    bot_replies_to,
    run_settings,
    stored_version,
)
from tests.fakes.discord import DiscordEmulator, Role
from tests.fakes.vlm import VLMServer


def moderator_role(emulator: DiscordEmulator) -> Role:
    return next(r for r in emulator.guild().roles.values() if r.name == "Moderator")


async def sentinel(emulator: DiscordEmulator, vlm: VLMServer, poster: str = "carol") -> None:
    """An image in #images (described by the deployment's default): once its description is there,
    every message posted before it has been handled."""
    vlm.script("Sentinel.")
    posted = await emulator.post_message(emulator.user(poster), emulator.channel("images"), "",
                                         attachments=[("s.png", png(color="black"))])
    await answered(emulator, vlm, posted, "Sentinel.")


async def test_an_admin_turns_describe_on_for_a_channel_and_off_again(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    done = answer_of(await run_settings(emulator, alice, "describe", {"channel": general, "on": True}))
    assert done == f"Automatic alt text is now on in <#{general.id}>."

    vlm.script("A teal square.")
    posted = await emulator.post_message(bob, general, "", attachments=[("a.png", png())])
    await answered(emulator, vlm, posted, "A teal square.")
    assert "alt text" in vlm.completions[0].texts[-1]

    answer_of(await run_settings(emulator, alice, "describe", {"channel": general, "on": False}))
    unanswered = await emulator.post_message(bob, general, "", attachments=[("b.png", png(color="red"))])
    await sentinel(emulator, vlm)
    assert bot_replies_to(emulator, unanswered) == []
    assert len(vlm.completions) == 2  # the first image and the sentinel

    # the deployment's default channel can be turned off too, and the thread of an "on" channel follows it
    answer_of(await run_settings(emulator, alice, "describe", {"channel": general, "on": True}))
    vlm.script("Threaded.")
    in_thread = await emulator.post_message(bob, emulator.channel("general-thread"), "", attachments=[("c.png", png())])
    await answered(emulator, vlm, in_thread, "Threaded.")
    assert await stored_version(glimpse, emulator) == 3
    assert_discord_refused_nothing(emulator)


async def test_a_member_without_manage_server_is_refused_and_nothing_changes(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    bob, general = emulator.user("bob"), emulator.channel("general")
    emulator.set_command_permission("settings", emulator.guild(), True)  # an admin shows /settings to everyone
    for command, options in (
        ("describe", {"channel": general, "on": True}),
        ("access", {"role": moderator_role(emulator), "rule": "block"}),
        ("show", {}),
        ("persona", {}),
    ):
        refused = await run_settings(emulator, bob, command, options)
        assert answer_of(refused) == NEEDS_MANAGE_SERVER
        assert refused.modal is None
    assert await stored_version(glimpse, emulator) == 0
    unanswered = await emulator.post_message(bob, general, "", attachments=[("a.png", png())])
    await sentinel(emulator, vlm)
    assert bot_replies_to(emulator, unanswered) == []
    assert_discord_refused_nothing(emulator)


async def test_a_blocked_roles_mention_gets_no_model_request_and_its_ask_one_short_line(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    moderators = moderator_role(emulator)
    done = answer_of(await run_settings(emulator, alice, "access", {"role": moderators, "rule": "block"}))
    assert done == f"<@&{moderators.id}> is blocked."

    mention = await emulator.post_message(alice, general, f"<@{emulator.bot_user.id}> what is this?")
    ask = await emulator.run_slash_command(alice, general, "ask", {"prompt": "hello?"})
    await emulator.wait_for_response(ask)
    assert ask.ephemeral and ask.original.content == BLOCKED
    await sentinel(emulator, vlm)
    assert bot_replies_to(emulator, mention) == []
    assert len(vlm.completions) == 1  # the sentinel's only

    # alice is blocked, but has Manage Server: /settings still works for her, and she lifts the block
    answer_of(await run_settings(emulator, alice, "access", {"role": moderators, "rule": "clear"}))
    vlm.script("Hello again.")
    again = await emulator.post_message(alice, general, f"<@{emulator.bot_user.id}> hello?")
    await answered(emulator, vlm, again, "Hello again.")

    # a blocked member: the same quiet, whoever their roles are
    answer_of(await run_settings(emulator, alice, "access", {"user": bob, "rule": "block"}))
    bobs = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> and me?")
    menu = await emulator.use_message_command(bob, again, "Describe image")  # he asked: one private line
    await emulator.wait_for_response(menu)
    assert menu.ephemeral and menu.original.content == BLOCKED
    await sentinel(emulator, vlm)
    assert bot_replies_to(emulator, bobs) == []
    allow_user = await run_settings(emulator, alice, "access", {"user": bob, "rule": "allow"})
    assert "Not saved" in answer_of(allow_user)
    assert_discord_refused_nothing(emulator)


async def test_an_allow_rule_limits_use_to_that_role(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, bob, general = emulator.user("alice"), emulator.user("bob"), emulator.channel("general")
    answer_of(await run_settings(emulator, alice, "access", {"role": moderator_role(emulator), "rule": "allow"}))

    bobs = await emulator.post_message(bob, general, f"<@{emulator.bot_user.id}> may I?")
    ocr = await emulator.run_slash_command(bob, general, "ocr", {"image": ("t.png", png())})
    await emulator.wait_for_response(ocr)
    assert ocr.ephemeral and ocr.original.content == NOT_ALLOWED
    vlm.script("Yes, you may.")
    alices = await emulator.post_message(alice, general, f"<@{emulator.bot_user.id}> may I?")
    await answered(emulator, vlm, alices, "Yes, you may.")
    carols = await emulator.post_message(emulator.user("carol"), emulator.channel("images"), "",
                                         attachments=[("c.png", png())])  # no allowed role: not described
    await sentinel(emulator, vlm, poster="alice")
    assert bot_replies_to(emulator, bobs) == bot_replies_to(emulator, carols) == []
    assert len(vlm.completions) == 2  # alice's question and her sentinel
    assert_discord_refused_nothing(emulator)


async def test_show_says_what_is_in_force_where_it_comes_from_and_who_changed_it(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer
) -> None:
    alice, general, images = emulator.user("alice"), emulator.channel("general"), emulator.channel("images")
    answer_of(await run_settings(emulator, alice, "describe", {"channel": general, "on": True}))
    answer_of(await run_settings(emulator, alice, "access", {"user": emulator.user("bob"), "rule": "block"}))
    shown = await run_settings(emulator, alice, "show")
    assert shown.ephemeral
    [embed] = shown.original.embeds
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Automatic alt text"] == (
        f"<#{general.id}>: on (server)\n<#{images.id}>: on (deployment default)"
    )
    assert f"Blocked members: <@{emulator.user('bob').id}>" in fields["Who may use Glimpse"]
    assert "Everywhere else: when mentioned or replied to (default)" in fields["Conversation"]
    assert "Direct messages: answered (deployment)" in fields["Conversation"]
    changes = fields["Recent changes"].splitlines()
    assert len(changes) == 2 and f"<@{alice.id}>: access for <@{emulator.user('bob').id}>: block" in changes[0]
    assert embed["footer"]["text"] == "Settings version 2"
    assert_discord_refused_nothing(emulator)
