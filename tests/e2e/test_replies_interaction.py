"""A live reply to an interaction nobody deferred: the placeholder is the interaction's response.

Every command of the bot defers before it answers, so no command path reaches this branch of
:class:`~bot.replies.sinks.InteractionSink`; the test registers a command of its own on the real bot that
streams the model's answer without deferring, and runs it through the Discord emulator.
"""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from bot.app import Glimpse
from bot.replies import InteractionSink, LiveReply
from bot.vlm import stream_answer
from tests.e2e.helpers import (  # noqa: F401  (the fixtures: scaled Discord limits, bot paced to match)
    PLACEHOLDER,
    emulator_config,
    paced_like_emulator,
    rejoin,
    release_until_done,
)
from tests.fakes.discord import DiscordEmulator, Interaction
from tests.fakes.vlm import Script, VLMServer

MESSAGE = 4  # interaction callback: a message as the response (a defer would be 5)


async def add_undeferred_command(glimpse: Glimpse, *, ephemeral: bool) -> None:
    """``/stream``: answers ``question`` through a live reply whose first message is the response."""

    @app_commands.command(name="stream", description="Test only: a live reply without deferring")
    async def stream(interaction: discord.Interaction, question: str) -> None:
        reply = LiveReply(InteractionSink(interaction, ephemeral=ephemeral), glimpse.pacer)
        await reply.start()  # within the 3 s an interaction allows
        await stream_answer(reply, glimpse.vision, [{"role": "user", "content": question}])

    glimpse.tree.add_command(stream)
    await glimpse.tree.sync()


def paragraphs(count: int) -> list[str]:
    """``count`` paragraphs of about 900 characters, each ending in a blank line."""
    return [f"Paragraph {n}: " + "the model keeps talking about the picture. " * 20 + "\n\n" for n in range(count)]


async def run(emulator: DiscordEmulator, question: str) -> Interaction:
    interaction = await emulator.run_slash_command(
        emulator.user("bob"), emulator.channel("general"), "stream", {"question": question}
    )
    return await emulator.wait_for_response(interaction)


@pytest.mark.parametrize("ephemeral", [False, True], ids=["public", "ephemeral"])
async def test_an_undeferred_interaction_gets_the_placeholder_as_its_response_then_edits_and_followups(
    glimpse: Glimpse, emulator: DiscordEmulator, vlm: VLMServer, ephemeral: bool
) -> None:
    await add_undeferred_command(glimpse, ephemeral=ephemeral)
    pieces = paragraphs(5)
    answer = "".join(pieces)  # about 4,400 characters: three messages
    vlm.script(Script(chunks=tuple(pieces), gated=True))

    interaction = await run(emulator, "What is in the picture?")
    [request] = await vlm.wait_for_requests(1)
    assert request.texts == ("What is in the picture?",)
    original = interaction.original
    assert original is not None
    await vlm.release(1)
    await emulator.wait_for_content(original, lambda text: text == pieces[0])
    await release_until_done(vlm, [request])

    def messages() -> list[str]:
        return [m.content for m in (original, *interaction.followups)]

    def complete() -> bool:
        try:
            return rejoin(messages(), answer) == answer
        except AssertionError:  # not there yet
            return False

    await emulator.wait_for(complete)

    assert interaction.callback_types == [MESSAGE]  # the response itself, never a defer
    assert interaction.original_history[0] == PLACEHOLDER
    assert len(interaction.followups) == 2
    assert [m.ephemeral for m in (original, *interaction.followups)] == [ephemeral] * 3
    assert all(not r.pinged_anyone for m in (original, *interaction.followups) for r in emulator.mentions_for(m))
