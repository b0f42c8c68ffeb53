"""The Stop, Regenerate and Continue buttons under answers: thin dynamic items, the work is in
``bot/replies/steering.py``. Registered as dynamic items, so a click works after a restart."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.access import permit, place_of
from bot.conversation import AnswerKind, AnswerRef, Steer, parse_answer_id, parse_stop_id
from bot.conversation.steering import ANSWER_ID_TEMPLATE, STOP_ID_TEMPLATE
from bot.guild import Feature
from bot.prompts import chat_system
from bot.replies import stop_button

if TYPE_CHECKING:
    from bot.app import Glimpse


def _item(custom_id: str, label: str) -> discord.ui.Button[Any]:
    return discord.ui.Button(label=label, custom_id=custom_id)


class StopButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=STOP_ID_TEMPLATE):
    def __init__(self, asker_id: int) -> None:
        button = stop_button(asker_id)
        super().__init__(_item(button.custom_id, button.label))
        self.asker_id = asker_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> StopButton:
        asker = parse_stop_id(match.string)
        assert asker is not None  # the template matched
        return cls(asker)

    async def callback(self, interaction: discord.Interaction) -> None:
        await cast("Glimpse", interaction.client).steering.stop_clicked(interaction, self.asker_id)


class AnswerButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ANSWER_ID_TEMPLATE):
    def __init__(self, action: Steer, ref: AnswerRef) -> None:
        super().__init__(_item(ref.custom_id(action), action.name.title()))
        self.action = action
        self.ref = ref

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AnswerButton:
        parsed = parse_answer_id(match.string)
        assert parsed is not None  # the template matched
        return cls(*parsed)

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = cast("Glimpse", interaction.client)
        chat = self.ref.kind is AnswerKind.CHAT
        # Asking again is using the feature again: the server's access rules apply at the click too.
        if not await permit(bot.server_settings, interaction, Feature.CHAT if chat else Feature.DESCRIBE):
            return
        here = await bot.server_settings.behaviour(place_of(interaction.channel))
        if chat:
            system_prompt = chat_system(here.persona)
        else:
            guild_locale = interaction.guild_locale and str(interaction.guild_locale)
            system_prompt = here.alt_text.system_prompt(str(interaction.locale), guild_locale)
        await bot.steering.answer_clicked(interaction, self.action, self.ref, system_prompt=system_prompt)


async def setup(bot: Glimpse) -> None:
    bot.add_dynamic_items(StopButton, AnswerButton)
