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


def sharded_world(shard_count: int = 2) -> World:
    """One guild on each of ``shard_count`` shards: guild ``shard-N`` (on shard N) with ``#images-N``
    and ``#chat-N``. ``alice`` (Moderator in every guild) and ``bob`` are members everywhere."""
    world = World()
    alice, bob = world.add_user("alice"), world.add_user("bob")
    for shard_id in range(shard_count):
        guild = world.add_guild(f"shard-{shard_id}", shard=(shard_id, shard_count))
        moderator = world.add_role(guild, "Moderator", MODERATOR)
        world.add_member(guild, alice, roles=[moderator])
        world.add_member(guild, bob)
        world.add_text_channel(guild, f"images-{shard_id}")
        world.add_text_channel(guild, f"chat-{shard_id}")
    return world
