"""The guard at Discord's door: who is asking (an :class:`~bot.guard.Actor` from a message or an
interaction), and the polite refusal when a limit says no.

Every feature a member triggers starts the same way::

    admission = await self.bot.gate.admit(interaction, Purpose.CHAT)   # or a message
    if admission is None:
        return  # refused: the member was told which limit, and when it resets
    model = MeteredVision(admission, self.bot.vision)

An interaction is refused with an ephemeral message (only the member sees it). A message (a mention,
a DM) is answered with a short reply, at most once per member and limit until it resets, so
hammering the bot over a limit does not make it spam the channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord

from bot.guard import Actor, Admission, Guard, Purpose, Refusal, Scope
from bot.replies import reply_briefly

log = logging.getLogger(__name__)

_NOTICES_KEPT = 4096


def actor_of(user: discord.abc.User, guild: discord.Guild | None, feature: Purpose) -> Actor:
    roles = frozenset(role.id for role in user.roles) if isinstance(user, discord.Member) else frozenset()
    return Actor(feature, user_id=user.id, guild_id=guild.id if guild else None, role_ids=roles)


class Gate:
    """Admits members' requests through the guard; remembers whom it told about a limit."""

    def __init__(self, guard: Guard, *, on_refused: Callable[[Purpose, Scope], None] | None = None) -> None:
        self.guard = guard
        self._on_refused = on_refused  # the metrics' count of refusals
        self._told: dict[tuple[int, Scope], float] = {}  # (user, limit) -> until when they know

    async def admit(self, origin: discord.Interaction | discord.Message, feature: Purpose) -> Admission | None:
        """The admission, or None after telling the member why not."""
        user = origin.user if isinstance(origin, discord.Interaction) else origin.author
        outcome = await self.guard.admit(actor_of(user, origin.guild, feature))
        if isinstance(outcome, Admission):
            return outcome
        log.info("Refused a %s request of user %s: %s limit", feature.value, user.id, outcome.scope.value)
        if self._on_refused is not None:
            self._on_refused(feature, outcome.scope)
        if feature.automatic:
            return None  # nobody asked: nobody is told
        if isinstance(origin, discord.Interaction):
            await refuse_interaction(origin, outcome)
        elif self._first_notice(user.id, outcome):
            await reply_briefly(origin, outcome.line())
        return None

    def _first_notice(self, user_id: int, refusal: Refusal) -> bool:
        now = self.guard.clock()
        key = (user_id, refusal.scope)
        if self._told.get(key, 0.0) > now:
            return False
        if len(self._told) >= _NOTICES_KEPT:
            self._told = {k: until for k, until in self._told.items() if until > now}
        self._told[key] = refusal.resets_at
        return True


async def refuse_interaction(interaction: discord.Interaction, refusal: Refusal) -> None:
    """Tell the member (ephemerally) which limit refused their request and when it resets."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(refusal.line(), ephemeral=True)
        else:
            await interaction.response.send_message(refusal.line(), ephemeral=True)
    except discord.HTTPException:
        log.warning("Could not tell user %s about a limit", interaction.user.id, exc_info=True)
