"""How soon people see words: Glimpse against a wait-then-reply bot, through the real clients.

Both bots run in this process with the real discord.py client against the Discord emulator and the
real openai client against the VLM server, which plays a model: ``--first-token`` seconds before the
first token, then about 40 tokens/s (4-character chunks every 25 ms). A user posts a 4000x3000 photo
in a describe channel; we time, from the post, the bot's first message (Glimpse's placeholder), the
first edit showing model text, and the final text.

- **Glimpse**: placeholder at once, image prepared off the loop, streamed and paced edits.
- **Baseline**: the usual first bot: download, resize and encode on the event loop (``Image.open`` ->
  ``thumbnail(1024)`` -> JPEG -> base64), a non-streaming request, then one reply with the whole answer.

A second part posts three photos at once in one channel and reports the most requests the bot made
in any window of Discord's bucket (5 per 5 s) and the 429s it drew.

A third part asks a follow-up question 1 s after an answer in the same channel finished, when the
answer's edits have spent the channel's window: with the placeholder taking the first free slot (the
behaviour before, ``LiveReply.placeholder_when_busy``) and with the first message waiting to carry the
text, side by side in one run. A fourth asks a reasoning model (thinking streamed as
``reasoning_content`` or inside ``<think>``) and times the first visible words.

Run: ``python -m bench.latency [--runs 5] [--write-readme]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import discord
import openai
from PIL import Image

from bench._common import machine, median, report
from bot.app import Glimpse
from bot.prompts import ALT_TEXT_REQUEST, ALT_TEXT_SYSTEM
from bot.replies import LiveReply
from bot.settings import Settings
from tests.fakes.discord import DiscordEmulator, Message
from tests.fakes.vlm import Script, VLMServer
from tests.unit import image_corpus

log = logging.getLogger("bench.latency")

ANSWER = (
    "A wide landscape photo: rolling green hills under a pale blue sky, a dirt path winding from the "
    "lower left toward a small stone cottage in the middle distance, with a line of dark pine trees "
    "behind it and soft evening light from the right. "
) * 3
CHUNK, CHUNK_DELAY = 4, 0.025
BUCKET_WINDOW = 5.5
SHORT_ANSWER = "Teal is a blue-green colour, named after the duck whose head feathers have it."
SHORT_FIRST_TOKEN = 0.3
FOLLOW_UP_AFTER = 1.0
THOUGHT = "The user asks about a colour; I should name it and say where the name comes from. " * 8


class Baseline(discord.Client):
    """Download, naive encode, wait for the whole answer, reply once."""

    def __init__(self, vlm: VLMServer, channel_id: int) -> None:
        super().__init__(intents=discord.Intents.default() | discord.Intents(message_content=True))
        self.model = openai.AsyncOpenAI(api_key=vlm.api_key, base_url=vlm.base_url, max_retries=0)
        self.channel_id = channel_id

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.channel.id != self.channel_id or not message.attachments:
            return
        data = await message.attachments[0].read()
        buffer = io.BytesIO()
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image.thumbnail((1024, 1024))  # sent raw, the photo is over the provider's 1 MB limit
        image.save(buffer, "JPEG")
        url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        stream = await self.model.chat.completions.create(
            model="qwen/qwen2.5-vl-72b-instruct",
            messages=[
                {"role": "system", "content": ALT_TEXT_SYSTEM},
                {"role": "user", "content": [
                    {"type": "text", "text": ALT_TEXT_REQUEST},
                    {"type": "image_url", "image_url": {"url": url}},
                ]},
            ],
            stream=True,  # read to the end, then reply: what a non-streaming request costs in time
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        await message.reply(text, mention_author=False)

    async def close(self) -> None:
        await self.model.close()
        await super().close()


def timings(reply: Message, posted_at: float) -> tuple[float, float, float]:
    """Seconds from the post to the bot's first message, the first model words and the final text."""
    first = reply.revisions[0].at - posted_at
    words = next(r.at for r in reply.revisions if ANSWER[:CHUNK] in r.content) - posted_at
    done = next(r.at for r in reply.revisions if r.content.strip() == ANSWER.strip()) - posted_at
    return first, words, done


async def one_post(emulator: DiscordEmulator, photo: bytes, name: str) -> tuple[float, float, float]:
    user, channel = emulator.user("bob"), emulator.channel("images")
    posted_at = time.monotonic()
    posted = await emulator.post_message(user, channel, attachments=[(name, photo)])
    reply = await emulator.wait_for_message(channel, after=posted, timeout=60)
    await emulator.wait_for_content(reply, lambda text: text.strip() == ANSWER.strip(), timeout=60)
    return timings(reply, posted_at)


async def measure(client: discord.Client, emulator: DiscordEmulator, photo: bytes, runs: int) -> list[tuple]:
    results = []
    async with emulator.running(client):
        for index in range(runs):
            await asyncio.sleep(BUCKET_WINDOW)  # every post starts with the channel's rate-limit bucket empty
            results.append(await one_post(emulator, photo, f"photo{index}.jpg"))
    return results


def max_in_window(times: Sequence[float], window: float) -> int:
    ordered = sorted(times)
    return max((sum(1 for t in ordered[i:] if t - start < window) for i, start in enumerate(ordered)), default=0)


async def concurrent_replies(emulator: DiscordEmulator, bot: Glimpse, photo: bytes) -> tuple[int, int, float]:
    """Three photos at once in one channel: the most requests in any 5 s window, 429s, and the span."""
    channel, users = emulator.channel("images"), [emulator.user(n) for n in ("alice", "bob", "carol")]
    async with emulator.running(bot):
        await asyncio.sleep(BUCKET_WINDOW)
        started = time.monotonic()
        posts = await asyncio.gather(
            *(emulator.post_message(u, channel, attachments=[(f"c{i}.jpg", photo)]) for i, u in enumerate(users))
        )
        replies = [await emulator.wait_for_message(channel, after=p, timeout=60) for p in posts]
        for reply in replies:
            await emulator.wait_for_content(reply, lambda text: text.strip() == ANSWER.strip(), timeout=120)
        span = time.monotonic() - started
    stamps = [r.at for r in emulator.requests if r.at >= started and f"/channels/{channel.id}/messages" in r.path]
    return max_in_window(stamps, 5.0), len(emulator.rate_limits), span


async def run(runs: int, first_token: float) -> list[str]:
    photo = image_corpus.photo_jpeg(4000, 3000, quality=92)

    async def model(_request: object) -> Script:
        await asyncio.sleep(first_token)
        return Script(text=ANSWER, chunk_size=CHUNK, delay=CHUNK_DELAY)

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with VLMServer() as vlm, DiscordEmulator() as emulator:
            vlm.respond_with(model)
            channel = emulator.channel("images")
            env = {
                **emulator.environment(), "VLM_API_KEY": vlm.api_key, "VLM_BASE_URL": vlm.base_url,
                "DESCRIBE_CHANNEL_IDS": str(channel.id), "STORE_URL": f"sqlite:///{Path(tmp) / 'b.db'}",
            }
            rows["Glimpse"] = await measure(Glimpse(Settings.from_env(env)), emulator, photo, runs)
            rows["Baseline (wait, then reply)"] = await measure(Baseline(vlm, channel.id), emulator, photo, runs)
            bucket, limited, span = await concurrent_replies(emulator, Glimpse(Settings.from_env(env)), photo)

    lines = [
        f"Machine: {machine(f'discord.py {discord.__version__}', f'openai {openai.__version__}')}.",
        f"Model played by the VLM server: {first_token:.1f} s to the first token, then {CHUNK} characters "
        f"every {CHUNK_DELAY * 1000:.0f} ms ({len(ANSWER)} characters). Input: a 4000x3000 JPEG photo. "
        f"Median of {runs} posts each, seconds from the post.",
        "",
        "| bot | first message | first model words | full answer |",
        "|---|---:|---:|---:|",
    ]
    for name, results in rows.items():
        first, words, done = (median([r[i] for r in results]) for i in range(3))
        lines.append(f"| {name} | {first:.2f} | {words:.2f} | {done:.2f} |")
    lines += [
        "",
        f"Three photos posted at once in one channel (Discord allows 5 requests per 5 s there): at most "
        f"{bucket} bot requests in any 5 s window, {limited} rate-limited responses (429), all three "
        f"answers complete after {span:.1f} s.",
    ]
    return lines


async def ask_and_wait(emulator: DiscordEmulator, text: str) -> tuple[float, Message]:
    """bob mentions the bot in #general; seconds to the reply showing the whole short answer."""
    channel = emulator.channel("general")
    posted_at = time.monotonic()
    posted = await emulator.post_message(emulator.user("bob"), channel, f"<@{emulator.bot_user.id}> {text}")
    reply = await emulator.wait_for_message(channel, lambda m: m.reference_id == posted.id, timeout=60)
    await emulator.wait_for_content(reply, lambda content: content == SHORT_ANSWER, timeout=60)
    return time.monotonic() - posted_at, reply


async def follow_ups(emulator: DiscordEmulator, bot: Glimpse, runs: int) -> dict[str, list[float]]:
    """Per behaviour, the seconds from a follow-up (1 s after an answer) to its whole answer."""
    results: dict[str, list[float]] = {"placeholder first (before)": [], "first message waits for text": []}
    async with emulator.running(bot):
        for _ in range(runs):
            for name, placeholder in (("placeholder first (before)", True), ("first message waits for text", False)):
                LiveReply.placeholder_when_busy = placeholder
                await asyncio.sleep(BUCKET_WINDOW)  # each pair starts with the channel's window empty
                _, reply = await ask_and_wait(emulator, "what colour is teal?")
                await emulator.wait_for(lambda reply=reply: reply.components and "Regenerate" in str(reply.components))
                await asyncio.sleep(FOLLOW_UP_AFTER)
                elapsed, _ = await ask_and_wait(emulator, "and where does the name come from?")
                results[name].append(elapsed)
    LiveReply.placeholder_when_busy = False
    return results


async def thinking_model(emulator: DiscordEmulator, bot: Glimpse, vlm: VLMServer, runs: int) -> dict[str, list]:
    """Per form of thinking: (seconds to "Thinking...", seconds to the first visible words) per run."""
    results: dict[str, list] = {"reasoning_content": [], "<think> tags": []}
    async with emulator.running(bot):
        for _ in range(runs):
            for name, form in (("reasoning_content", "field"), ("<think> tags", "tags")):
                vlm.script(Script(
                    text=SHORT_ANSWER, reasoning=THOUGHT, reasoning_form=form,  # type: ignore[arg-type]
                    chunk_size=CHUNK, delay=CHUNK_DELAY,
                ))
                await asyncio.sleep(BUCKET_WINDOW)
                channel = emulator.channel("general")
                posted_at = time.monotonic()
                posted = await emulator.post_message(emulator.user("bob"), channel, f"<@{emulator.bot_user.id}> teal?")
                reply = await emulator.wait_for_message(channel, lambda m, p=posted: m.reference_id == p.id, timeout=60)
                await emulator.wait_for_content(reply, lambda content: content == SHORT_ANSWER, timeout=60)
                thinking = next((r.at for r in reply.revisions if r.content.startswith("Thinking...")), math.nan)
                words = next(r.at for r in reply.revisions if r.content and SHORT_ANSWER.startswith(r.content))
                results[name].append((thinking - posted_at, words - posted_at))
    return results


async def run_chat(runs: int) -> list[str]:
    """The follow-up and the reasoning model (both in a chat channel)."""
    async def model(_request: object) -> Script:
        await asyncio.sleep(SHORT_FIRST_TOKEN)
        return Script(text=SHORT_ANSWER, chunk_size=CHUNK, delay=CHUNK_DELAY)

    with tempfile.TemporaryDirectory() as tmp:
        async with VLMServer() as vlm, DiscordEmulator() as emulator:
            vlm.respond_with(model)
            env = {
                **emulator.environment(), "VLM_API_KEY": vlm.api_key, "VLM_BASE_URL": vlm.base_url,
                "STORE_URL": f"sqlite:///{Path(tmp) / 'c.db'}",
            }
            follow = await follow_ups(emulator, Glimpse(Settings.from_env(env)), runs)
            limited = len(emulator.rate_limits)
            env["STORE_URL"] = f"sqlite:///{Path(tmp) / 'r.db'}"
            thoughts = await thinking_model(emulator, Glimpse(Settings.from_env(env)), vlm, runs)
    model_time = SHORT_FIRST_TOKEN + math.ceil(len(SHORT_ANSWER) / CHUNK) * CHUNK_DELAY
    thinking_time = math.ceil(len(THOUGHT) / CHUNK) * CHUNK_DELAY
    lines = [
        "",
        f"**A follow-up {FOLLOW_UP_AFTER:.0f} s after an answer**, in a chat channel whose window that answer "
        f"spent. The model takes {SHORT_FIRST_TOKEN:.1f} s to its first token and streams "
        f"{len(SHORT_ANSWER)} characters ({model_time:.2f} s in all). Median of {runs} pairs, seconds from the "
        "follow-up to its whole answer on screen:",
        "",
        "| first message of the follow-up | full answer | slowest |",
        "|---|---:|---:|",
    ]
    for name, times in follow.items():
        lines.append(f"| {name} | {median(times):.2f} | {max(times):.2f} |")
    lines += [
        "",
        f"Rate-limited responses (429) in all those runs: {limited}.",
        "",
        f"**A reasoning model** thinking for {thinking_time:.2f} s ({len(THOUGHT)} characters of thinking, never "
        f"shown) before the same answer; median of {runs} questions (the channel's window empty), seconds "
        "from the question:",
        "",
        '| thinking sent as | "Thinking..." shown | first visible words |',
        "|---|---:|---:|",
    ]
    for name, pairs in thoughts.items():
        lines.append(f"| {name} | {median([p[0] for p in pairs]):.2f} | {median([p[1] for p in pairs]):.2f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--first-token", type=float, default=0.8, help="seconds the model takes to start")
    parser.add_argument("--write-readme", action="store_true", help="store the results in bench/README.md")
    args = parser.parse_args(argv)
    logging.getLogger("discord").setLevel(logging.WARNING)
    lines = asyncio.run(run(args.runs, args.first_token)) + asyncio.run(run_chat(args.runs))
    report(lines, write=args.write_readme, key="latency", title="Time to first words", intro=_INTRO)


_INTRO = (
    "`python -m bench.latency`: Glimpse and a wait-then-reply baseline in the same run, both through the "
    "real discord.py and openai clients against the local fakes (see the module docstring)."
)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
