"""The default world most end-to-end tests need, so they can start in one line."""

from __future__ import annotations

from .state import MODERATOR, Perm, World


def standard_world(*, bot_permissions: Perm | None = None) -> World:
    """Two guilds and a bot that is in both.

    "Glimpse Lab": channels ``#general`` (with thread ``general-thread``), ``#images``, ``#mod-log``
    (visible only to moderators and the bot); users ``alice`` (Moderator role: Manage Messages, Moderate
    Members, Manage Guild), ``bob`` (plain member), ``carol`` (plain member), owner ``lab-owner``.
    "Other Server": channel ``#lobby``; member ``dave``.
    """
    world = World()
    owner = world.add_user("lab-owner")
    kwargs = {} if bot_permissions is None else {"bot_permissions": bot_permissions}
    lab = world.add_guild("Glimpse Lab", owner=owner, **kwargs)
    moderator = world.add_role(lab, "Moderator", MODERATOR, mentionable=True)
    world.add_member(lab, world.add_user("alice"), roles=[moderator])
    world.add_member(lab, world.add_user("bob"))
    world.add_member(lab, world.add_user("carol"))
    general = world.add_text_channel(lab, "general")
    world.add_thread(general, "general-thread")
    world.add_text_channel(lab, "images")
    mod_log = world.add_text_channel(lab, "mod-log")
    world.overwrite(mod_log, lab.everyone, deny=Perm.VIEW_CHANNEL)
    world.overwrite(mod_log, moderator, allow=Perm.VIEW_CHANNEL)
    world.overwrite(mod_log, world.bot, allow=Perm.VIEW_CHANNEL)

    other = world.add_guild("Other Server", **kwargs)
    world.add_member(other, world.add_user("dave"))
    world.add_text_channel(other, "lobby")
    return world
