"""Moderation benchmark: how well the verdict cache recognises reposts, and what a check costs.

Run: ``.venv/bin/python -m bench.moderation [--seed N] [--per-kind N]``. Everything is generated
locally (no network): photo-like pictures, text screenshots, QR-like codes and captioned memes;
each original is later reposted as the same file, re-encoded (JPEG q 60-95), resized (50-200 %)
and slightly cropped (1-5 % per side), among images that are never reposted.

It prints (1) the hash distances of copies and of distinct images, with the copy acceptance and
false matches for a grid of thresholds (how ``phash.LOOKUP_DISTANCE``/``CONFIRM_DISTANCE`` were
chosen), (2) the cache hit rate and false matches on the post stream with the chosen thresholds,
(3) image tokens per check at the default policy (low detail), (4) images checked per minute: the
real ``ModerationService`` (image worker, SQLite store, verdict cache, its model lane, the real
openai client) against the fake VLM server on 127.0.0.1, once with an instant model and once with a
simulated model latency (``--latency``), every post of a stream submitted at once (a burst).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import PIL
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bench._common import machine
from bot.moderation import Category, ModerationSettings, Verdict
from bot.moderation.cache import CLEAN_CONFIRM_DISTANCE, VerdictCache
from bot.moderation.phash import CONFIRM_DISTANCE, LOOKUP_DISTANCE, ImageFingerprint, fingerprint
from tests.fakes.attachment import FakeAttachment
from tests.fakes.cache_store import MemoryCacheStore

log = logging.getLogger("bench.moderation")

# --- synthetic images -----------------------------------------------------------------------------

_VOCABULARY = (
    "free nitro giveaway click claim your reward now limited offer discord steam gift card winner "
    "rules welcome server please read the channel guide meme cat dog lol when you forget to save "
    "your homework the weekend monday coffee patch notes update bug fixed ranked match scan here"
)
_WORDS = _VOCABULARY.split()
SIZES = ((800, 600), (640, 640), (1024, 576), (600, 900), (1280, 720))
Kind = Callable[[random.Random, tuple[int, int]], Image.Image]


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def photo(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Smooth colour fields with a few blurred shapes: the hash-relevant structure of a photo."""
    width, height = size
    seeds = Image.new("RGB", (6, 5))
    seeds.putdata([_colour(rng) for _ in range(30)])
    image = seeds.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(3, 9)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        box = (x0, y0, x0 + rng.randrange(20, width // 2), y0 + rng.randrange(20, height // 2))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=_colour(rng))
    return image.filter(ImageFilter.GaussianBlur(1.5))


def text_screenshot(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Lines of text on a light or dark (Discord-like) background: chat screenshots, fake giveaways."""
    background = rng.choice([(255, 255, 255), (54, 57, 63), (240, 240, 235)])
    ink = (20, 20, 20) if sum(background) > 380 else (220, 221, 222)
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    font_size = rng.randrange(18, 30)
    font = ImageFont.load_default(font_size)
    y = rng.randrange(5, 30)
    while y < size[1] - font_size:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(2, 9)))
        draw.text((rng.randrange(10, 60), y), line, fill=ink, font=font)
        y += int(font_size * rng.uniform(1.3, 2.2))
    return image


def qr_like(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A QR-code look-alike (random modules, three finder squares, quiet zone) centred on white."""
    modules, quiet = 29, 4
    grid = Image.new("L", (modules + 2 * quiet,) * 2, 255)
    pixels = grid.load()
    assert pixels is not None
    for y, x in itertools.product(range(modules), repeat=2):
        pixels[x + quiet, y + quiet] = 0 if rng.random() < 0.5 else 255
    for fx, fy in ((0, 0), (modules - 7, 0), (0, modules - 7)):
        for y, x in itertools.product(range(7), repeat=2):
            ring = max(abs(x - 3), abs(y - 3))
            pixels[fx + x + quiet, fy + y + quiet] = 0 if ring in (0, 1, 3) else 255
    side = min(size)
    image = Image.new("RGB", size, (255, 255, 255))
    code = grid.resize((side, side), Image.Resampling.NEAREST).convert("RGB")
    image.paste(code, ((size[0] - side) // 2, (size[1] - side) // 2))
    return image


def meme(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A photo with impact-style top and bottom captions."""
    image = photo(rng, size)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size[1] // 10)
    for y in (10, size[1] - size[1] // 8 - 10):
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(2, 5))).upper()
        draw.text((20, y), line, fill="white", font=font, stroke_width=3, stroke_fill="black")
    return image


KINDS: dict[str, Kind] = {"photo": photo, "text": text_screenshot, "qr": qr_like, "meme": meme}


def encode(image: Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


def reencoded(rng: random.Random, image: Image.Image) -> bytes:
    return encode(image, "JPEG", rng.randrange(60, 96))


def resized(rng: random.Random, image: Image.Image) -> bytes:
    factor = rng.uniform(0.5, 2.0)
    size = (max(16, round(image.width * factor)), max(16, round(image.height * factor)))
    return encode(image.resize(size, Image.Resampling.LANCZOS), "JPEG", 85)


def cropped(rng: random.Random, image: Image.Image) -> bytes:
    """1-5 % taken off, unevenly, from the sides (a screenshot of a screenshot, a re-framed meme)."""
    width, height = image.size
    fraction = rng.uniform(0.01, 0.05)
    box = (
        round(width * fraction * rng.random()),
        round(height * fraction * rng.random()),
        width - round(width * fraction * rng.random()),
        height - round(height * fraction * rng.random()),
    )
    return encode(image.crop(box), "JPEG", 85)


VARIANTS: dict[str, Callable[[random.Random, Image.Image], bytes]] = {
    "re-encoded": reencoded,
    "resized": resized,
    "cropped": cropped,
}


@dataclass(frozen=True)
class Post:
    source: int  # index of the original image; distinct images have distinct sources
    kind: str
    variant: str  # "original", "single", "same file" or a VARIANTS key
    data: bytes


def build_stream(seed: int, per_kind: int, singles_per_kind: int) -> list[Post]:
    """Originals (PNG) first in random order, then their reposts shuffled among never-reposted images."""
    rng = random.Random(seed)
    originals: list[Post] = []
    later: list[Post] = []
    source = 0
    for kind, draw in KINDS.items():
        for index in range(per_kind + singles_per_kind):
            image = draw(rng, rng.choice(SIZES))
            data = encode(image)
            if index >= per_kind:
                later.append(Post(source, kind, "single", data))
            else:
                originals.append(Post(source, kind, "original", data))
                later.append(Post(source, kind, "same file", data))
                later.extend(Post(source, kind, name, make(rng, image)) for name, make in VARIANTS.items())
            source += 1
    rng.shuffle(originals)
    rng.shuffle(later)
    return originals + later


# --- (1) distances and thresholds -----------------------------------------------------------------


def threshold_table(stream: Sequence[Post], fingerprints: Sequence[ImageFingerprint]) -> list[str]:
    first: dict[int, ImageFingerprint] = {}
    copies: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for post, fp in zip(stream, fingerprints, strict=True):
        if post.variant in ("original", "single"):
            first[post.source] = fp
    for post, fp in zip(stream, fingerprints, strict=True):
        if post.variant in VARIANTS:
            copies[f"{post.kind} {post.variant}"].append(fp.distance(first[post.source]))
    distinct = [a.distance(b) for a, b in itertools.combinations(first.values(), 2)]
    lines = ["Copy distances (64-bit lookup / 256-bit confirm), max and median:"]
    for name in sorted(copies):
        pairs = copies[name]
        lookups, confirms = [p[0] for p in pairs], [p[1] for p in pairs]
        lines.append(
            f"  {name:<20} lookup max {max(lookups):>2} median {statistics.median(lookups):>4}   "
            f"confirm max {max(confirms):>3} median {statistics.median(confirms):>5}"
        )
    lines.append(
        f"Distinct pairs: {len(distinct)}; smallest lookup distance {min(d[0] for d in distinct)}, "
        f"smallest confirm distance {min(d[1] for d in distinct)}"
    )
    every_copy = [pair for pairs in copies.values() for pair in pairs]
    lines.append("Thresholds (lookup, confirm): copies accepted / distinct pairs accepted:")
    for lookup_max, confirm_max in itertools.product((6, 8, 10, 12), (16, 24, 32, 40)):
        accepted = sum(a <= lookup_max and b <= confirm_max for a, b in every_copy)
        false = sum(a <= lookup_max and b <= confirm_max for a, b in distinct)
        lines.append(
            f"  ({lookup_max:>2}, {confirm_max:>2}): {accepted}/{len(every_copy)} "
            f"({100 * accepted / len(every_copy):.0f} %), false {false}"
        )
    lookup_only = sum(a <= LOOKUP_DISTANCE for a, _ in distinct)
    lines.append(f"Distinct pairs within {LOOKUP_DISTANCE} bits on the 64-bit hash alone: {lookup_only}")
    return lines


# --- (2) the cache on the stream ------------------------------------------------------------------


async def cache_run(stream: Sequence[Post], fingerprints: Sequence[ImageFingerprint], *, flagged: bool) -> list[str]:
    """Each post: cache lookup; on a miss, a stand-in model verdict naming its source is stored
    (all clean or all flagged: clean verdicts are reused only for closer matches)."""
    store = MemoryCacheStore()
    cache = VerdictCache(store)
    settings = ModerationSettings(watch_all_channels=True)
    guild_id = 1
    hits: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    false_matches: list[str] = []
    for post, fp in zip(stream, fingerprints, strict=True):
        seen[post.variant] += 1
        hit = await cache.get(guild_id, settings, fp)
        if hit is None:
            verdict = (
                Verdict(True, (Category.SPAM,), 1, f"source {post.source}", None)
                if flagged
                else Verdict(False, (), 0, f"source {post.source}", None)
            )
            await cache.put(guild_id, settings, fp, verdict)
            continue
        hits[post.variant] += 1
        if hit.verdict.reason != f"source {post.source}":
            false_matches.append(f"{post.kind} {post.variant} got the verdict of {hit.verdict.reason}")
    reposts = [v for v in seen if v not in ("original", "single")]
    repost_total = sum(seen[v] for v in reposts)
    repost_hits = sum(hits[v] for v in reposts)
    saved = sum(hits.values())
    lines = [
        f"Verdicts in this run: {'flagged' if flagged else 'clean'}",
        f"Stream: {len(stream)} posts ({seen['original']} originals, {repost_total} reposts, "
        f"{seen['single']} never-reposted images)",
        f"Thresholds: lookup <= {LOOKUP_DISTANCE} of 64 bits, confirm <= "
        f"{CLEAN_CONFIRM_DISTANCE if not flagged else CONFIRM_DISTANCE} of 256 bits",
    ]
    for variant in ("same file", *VARIANTS):
        lines.append(f"  {variant:<11} hits {hits[variant]}/{seen[variant]}")
    lines += [
        f"Repost hit rate: {repost_hits}/{repost_total} ({100 * repost_hits / repost_total:.0f} %); "
        f"model requests saved: {saved}/{len(stream)} ({100 * saved / len(stream):.0f} %)",
        f"False matches (a post answered with another image's verdict): {len(false_matches)}",
        *(f"  {line}" for line in false_matches),
        f"Store operations: {store.reads} reads, {store.writes} writes",
    ]
    return lines


# --- (3) tokens per check -------------------------------------------------------------------------


def token_lines(stream: Sequence[Post]) -> list[str]:
    from bot.images.prepare import prepare_image, qwen_image_tokens

    originals = [post for post in stream if post.variant in ("original", "single")]
    tokens = Counter()
    for post in originals:
        prepared = prepare_image(post.data, detail=ModerationSettings().detail)
        tokens[(prepared.width, prepared.height, prepared.tokens)] += 1
    lines = ["Image tokens per check at the default policy (detail=low, Qwen 28x28 blocks):"]
    for (width, height, count), times in sorted(tokens.items()):
        lines.append(f"  sent as {width}x{height}: {count} tokens ({times} images)")
    raw = statistics.mean(qwen_image_tokens(*Image.open(io.BytesIO(p.data)).size) for p in originals)
    lines.append(
        f"  mean {statistics.mean(t for (_, _, t), n in tokens.items() for _ in range(n)):.0f} tokens "
        f"per image (the same images sent unresized: {raw:.0f})"
    )
    return lines


# --- (4) images checked per minute through the real service --------------------------------------

CLEAN_ANSWER = json.dumps({"flagged": False, "categories": [], "severity": 0, "reason": "Nothing wrong.", "rule": None})


async def service_run(posts: Sequence[Post], *, latency: float) -> list[str]:
    """Every post checked by ``ModerationService.check_attachment`` at the default policy, all submitted at
    once; the fake model answers a clean verdict after ``latency`` seconds."""
    from bot.guard import Guard, Limits, Purpose
    from bot.images.prepare import ImageWorker
    from bot.moderation.service import MODEL_LANE, ModerationService
    from bot.store import open_store
    from bot.vlm.client import VisionClient
    from tests.fakes.vlm import Script, VLMServer

    settings = ModerationSettings(watch_all_channels=True)
    with tempfile.TemporaryDirectory() as tmp:
        async with VLMServer() as vlm:
            vlm.respond_with(lambda _: Script(chunks=(CLEAN_ANSWER,), delay=latency))
            store = await open_store(f"sqlite:///{tmp}/bench.db")
            vision = VisionClient(api_key=vlm.api_key, base_url=vlm.base_url, model=vlm.model)
            worker = ImageWorker()
            guard = Guard(store, Limits(moderation_daily=0), max_tokens={purpose: 400 for purpose in Purpose})
            service = ModerationService(store=store, vision=vision, guard=guard, images=worker)
            try:
                started = time.perf_counter()
                checks = (service.check_attachment(1, settings, FakeAttachment.of(post.data)) for post in posts)
                results = await asyncio.gather(*checks)
                elapsed = time.perf_counter() - started
            finally:
                worker.close()
                await vision.aclose()
                await store.close()
    asked = [r for r in results if not r.cached and r.prompt_tokens is not None]
    cached = sum(r.cached for r in results)
    review = sum(r.verdict.requires_review for r in results)
    lines = [
        f"Model latency {latency:.2f} s, model lane {MODEL_LANE}: {len(posts)} posts in {elapsed:.1f} s = "
        f"**{60 * len(posts) / elapsed:.0f} images per minute**; {len(asked)} model requests, "
        f"{cached} answered from the cache ({100 * cached / len(posts):.0f} %), {review} needs-review",
    ]
    if asked:
        lines.append(
            f"  prompt tokens per model request (fake server's count: Qwen image rule, text estimated): "
            f"mean {statistics.mean(r.prompt_tokens or 0 for r in asked):.0f}, "
            f"completion {statistics.mean(r.completion_tokens or 0 for r in asked):.0f}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--per-kind", type=int, default=25, help="reposted originals per image kind")
    parser.add_argument("--singles", type=int, default=10, help="never-reposted images per kind")
    parser.add_argument("--latency", type=float, default=1.0, help="simulated model latency (s) for run (4)")
    parser.add_argument("--latency-per-kind", type=int, default=5, help="reposted originals per kind, run (4)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    for noisy in ("httpx", "httpx2", "bot.vlm.client"):  # one line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log.info("Machine: %s", machine(f"Pillow {PIL.__version__}"))
    started = time.perf_counter()
    stream = build_stream(args.seed, args.per_kind, args.singles)
    generated = time.perf_counter()
    fingerprints = [fingerprint(post.data) for post in stream]
    hashed = time.perf_counter()
    log.info(
        "Generated %d posts in %.1f s; fingerprinted them in %.2f s (%.1f ms per image)",
        len(stream),
        generated - started,
        hashed - generated,
        1000 * (hashed - generated) / len(stream),
    )
    for line in threshold_table(stream, fingerprints):
        log.info("%s", line)
    for flagged in (False, True):
        for line in asyncio.run(cache_run(stream, fingerprints, flagged=flagged)):
            log.info("%s", line)
    for line in token_lines(stream):
        log.info("%s", line)
    for line in asyncio.run(service_run(stream, latency=0.0)):
        log.info("%s", line)
    small = build_stream(args.seed + 1, args.latency_per_kind, max(1, args.latency_per_kind // 2))
    for line in asyncio.run(service_run(small, latency=args.latency)):
        log.info("%s", line)


if __name__ == "__main__":
    main()
