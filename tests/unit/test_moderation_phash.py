"""Difference hashes of generated images and the verdict cache built on them."""

from __future__ import annotations

import io
import itertools
import random

import pytest
from PIL import Image

from bench.moderation import KINDS, encode
from bot.moderation import (
    Action,
    Category,
    ImageFingerprint,
    ModerationSettings,
    Verdict,
    VerdictCache,
    dhash,
    fingerprint,
    hamming,
)
from bot.moderation.cache import CLEAN_CONFIRM_DISTANCE, MAX_ENTRIES_PER_KEY, NAMESPACE, band_keys
from bot.moderation.phash import CONFIRM_BITS, CONFIRM_DISTANCE, LOOKUP_DISTANCE, hash_from_hex, hash_to_hex
from tests.fakes.cache_store import MemoryCacheStore

# --- hashes -----------------------------------------------------------------------------------------


def test_gradients_give_all_ones_and_all_zeros() -> None:
    rising = Image.new("L", (256, 64))
    rising.putdata([x for _ in range(64) for x in range(256)])  # dark left, bright right
    assert dhash(rising) == (1 << 64) - 1
    assert dhash(rising.transpose(Image.Transpose.FLIP_LEFT_RIGHT)) == 0


def test_bytes_and_image_give_the_same_hash() -> None:
    image = KINDS["photo"](random.Random(1), (320, 240))
    assert fingerprint(encode(image)) == fingerprint(image)


def test_transparent_pixels_count_as_white_whatever_colour_hides_beneath() -> None:
    rng = random.Random(2)
    base = KINDS["meme"](rng, (200, 150)).convert("RGBA")
    noisy, clean = base.copy(), base.copy()
    for x, y in itertools.product(range(0, 100), range(150)):  # left half transparent
        noisy.putpixel((x, y), (rng.randrange(256), rng.randrange(256), rng.randrange(256), 0))
        clean.putpixel((x, y), (255, 255, 255, 0))
    assert fingerprint(encode(noisy)) == fingerprint(encode(clean))


def test_exif_orientation_is_applied() -> None:
    upright = KINDS["photo"](random.Random(3), (300, 200))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone writes, plus the tag
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif)
    assert hamming(dhash(buffer.getvalue()), dhash(upright)) <= 2


def test_hamming_and_hex_forms() -> None:
    assert hamming(0b1011, 0b0001) == 2
    assert hash_to_hex(0xABC) == "0000000000000abc"
    assert hash_from_hex("0000000000000abc") == 0xABC
    assert hash_from_hex(hash_to_hex(5, CONFIRM_BITS), CONFIRM_BITS) == 5
    for bad in ("abc", "0000000000000ABC", "000000000000000g", " 000000000000abc"):
        with pytest.raises(ValueError):
            hash_from_hex(bad)
    with pytest.raises(ValueError):
        hash_to_hex(1 << 64)


def _copies(image: Image.Image) -> dict[str, bytes]:
    width, height = image.size
    crop = (
        round(width * 0.02),
        round(height * 0.01),
        width - round(width * 0.01),
        height - round(height * 0.02),
    )
    return {
        "jpeg q60": encode(image, "JPEG", 60),
        "jpeg q95": encode(image, "JPEG", 95),
        "half size": encode(image.resize((width // 2, height // 2), Image.Resampling.LANCZOS), "JPEG", 85),
        "double size": encode(image.resize((width * 2, height * 2), Image.Resampling.LANCZOS), "JPEG", 85),
        "cropped 2%": encode(image.crop(crop), "JPEG", 85),
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_reencoded_and_resized_copies_stay_near(kind: str) -> None:
    image = KINDS[kind](random.Random(kind), (480, 360))
    original = fingerprint(encode(image))
    for name, data in _copies(image).items():
        if name == "cropped 2%" and kind in ("text", "qr"):
            continue  # crops shift fine detail; measured in bench/moderation.py, allowed to miss
        copy = fingerprint(data)
        assert original.is_near(copy), (name, original.distance(copy))


def test_distinct_images_stay_far_apart_qr_codes_included() -> None:
    rng = random.Random(7)
    images = [fingerprint(encode(draw(rng, (480, 360)))) for draw in KINDS.values() for _ in range(3)]
    for a, b in itertools.combinations(images, 2):
        assert not a.is_near(b)
        assert hamming(a.confirm, b.confirm) > CONFIRM_DISTANCE + 8, a.distance(b)


def test_the_64_bit_hash_alone_confuses_qr_codes() -> None:
    """Why the 256-bit confirmation exists: distinct QR codes in wide images nearly share their
    64-bit hash (the white margins dominate a 9x8 thumbnail)."""
    rng = random.Random(8)
    codes = [fingerprint(encode(KINDS["qr"](rng, (1024, 576)))) for _ in range(5)]
    assert any(hamming(a.lookup, b.lookup) <= LOOKUP_DISTANCE for a, b in itertools.combinations(codes, 2))
    assert not any(a.is_near(b) for a, b in itertools.combinations(codes, 2))


# --- cache ------------------------------------------------------------------------------------------

GUILD = 42
SETTINGS = ModerationSettings(watch_all_channels=True, cache_seconds=600)
SCAM = Verdict(True, (Category.SCAM,), 3, "Phishing QR code.", None)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryCacheStore:
    return MemoryCacheStore(clock=clock)


@pytest.fixture
def cache(store: MemoryCacheStore, clock: Clock) -> VerdictCache:
    return VerdictCache(store, clock=clock)


def fp(lookup: int, confirm: int = 0) -> ImageFingerprint:
    return ImageFingerprint(lookup=lookup, confirm=confirm)


BASE = fp(0x0123_4567_89AB_CDEF, (1 << 200) - 12345)


def flipped(base: ImageFingerprint, *bits: int) -> ImageFingerprint:
    lookup = base.lookup
    for bit in bits:
        lookup ^= 1 << bit
    return fp(lookup, base.confirm)


async def test_an_exact_repost_is_answered_from_the_cache(cache: VerdictCache) -> None:
    assert await cache.get(GUILD, SETTINGS, BASE) is None
    await cache.put(GUILD, SETTINGS, BASE, SCAM)
    hit = await cache.get(GUILD, SETTINGS, BASE)
    assert hit is not None and hit.verdict == SCAM and hit.exact and hit.lookup_distance == 0


@pytest.mark.parametrize("bits", [(0,), (0, 16), (1, 17, 33), (60, 61, 62)])
async def test_hashes_within_three_bits_always_share_a_band(
    cache: VerdictCache, bits: tuple[int, ...]
) -> None:
    await cache.put(GUILD, SETTINGS, BASE, SCAM)
    hit = await cache.get(GUILD, SETTINGS, flipped(BASE, *bits))
    assert hit is not None and not hit.exact and hit.lookup_distance == len(bits)


async def test_a_difference_in_every_band_is_not_found(cache: VerdictCache) -> None:
    """The pigeonhole bound: 4 differing bits, one per band, share no band (a miss, never a wrong hit)."""
    await cache.put(GUILD, SETTINGS, BASE, SCAM)
    assert await cache.get(GUILD, SETTINGS, flipped(BASE, 0, 16, 32, 48)) is None


async def test_a_same_lookup_hash_with_a_different_confirm_hash_is_a_miss(cache: VerdictCache) -> None:
    await cache.put(GUILD, SETTINGS, BASE, SCAM)
    other = fp(BASE.lookup, BASE.confirm ^ ((1 << (CONFIRM_DISTANCE + 1)) - 1))
    assert await cache.get(GUILD, SETTINGS, other) is None


async def test_clean_verdicts_need_a_closer_match_than_flagged_ones(cache: VerdictCache) -> None:
    clean = Verdict(False, (), 0, "A harmless QR code to our website.", None)
    await cache.put(GUILD, SETTINGS, BASE, clean)
    await cache.put(GUILD + 1, SETTINGS, BASE, SCAM)
    between = fp(BASE.lookup, BASE.confirm ^ ((1 << (CLEAN_CONFIRM_DISTANCE + 1)) - 1))
    assert CLEAN_CONFIRM_DISTANCE < hamming(between.confirm, BASE.confirm) <= CONFIRM_DISTANCE
    assert await cache.get(GUILD, SETTINGS, between) is None
    hit = await cache.get(GUILD + 1, SETTINGS, between)
    assert hit is not None and hit.verdict == SCAM


async def test_the_closest_entry_wins(cache: VerdictCache) -> None:
    far = Verdict(False, (), 0, "far", None)
    near = Verdict(False, (), 0, "near", None)
    await cache.put(GUILD, SETTINGS, flipped(BASE, 0, 1, 2), far)
    await cache.put(GUILD, SETTINGS, flipped(BASE, 3), near)
    hit = await cache.get(GUILD, SETTINGS, BASE)
    assert hit is not None and hit.verdict == near


async def test_real_copies_hit_and_other_images_miss(cache: VerdictCache) -> None:
    rng = random.Random(11)
    image = KINDS["meme"](rng, (480, 360))
    await cache.put(GUILD, SETTINGS, fingerprint(encode(image)), SCAM)
    for data in _copies(image).values():
        hit = await cache.get(GUILD, SETTINGS, fingerprint(data))
        assert hit is not None and hit.verdict == SCAM
    assert await cache.get(GUILD, SETTINGS, fingerprint(encode(KINDS["meme"](rng, (480, 360))))) is None


async def test_entries_expire(cache: VerdictCache, clock: Clock) -> None:
    await cache.put(GUILD, SETTINGS, BASE, SCAM)
    clock.now += SETTINGS.cache_seconds - 1
    assert await cache.get(GUILD, SETTINGS, BASE) is not None
    clock.now += 2
    assert await cache.get(GUILD, SETTINGS, BASE) is None


async def test_a_refreshed_key_does_not_revive_an_expired_entry(cache: VerdictCache, clock: Clock) -> None:
    old = flipped(BASE, 0)
    await cache.put(GUILD, SETTINGS, old, SCAM)
    clock.now += SETTINGS.cache_seconds - 10
    await cache.put(GUILD, SETTINGS, flipped(BASE, 63), Verdict(False, (), 0, "new", None))
    clock.now += 20
    hit = await cache.get(GUILD, SETTINGS, old)
    assert hit is not None and hit.verdict.reason == "new"  # the old scam verdict is gone


async def test_scope_guild_policy_and_window(cache: VerdictCache, store: MemoryCacheStore) -> None:
    await cache.put(GUILD, SETTINGS, BASE, SCAM)
    assert await cache.get(GUILD + 1, SETTINGS, BASE) is None
    assert await cache.get(GUILD, SETTINGS.replace(rules="No QR codes."), BASE) is None
    delete_all = {severity: Action.DELETE for severity in (1, 2, 3)}
    assert await cache.get(GUILD, SETTINGS.replace(actions=delete_all), BASE) is not None  # not in the prompt
    writes = store.writes
    off = SETTINGS.replace(cache_seconds=0)
    await cache.put(GUILD, off, BASE, SCAM)
    assert store.writes == writes
    assert await cache.get(GUILD, off, BASE) is None


async def test_needs_review_verdicts_are_not_cached(cache: VerdictCache, store: MemoryCacheStore) -> None:
    await cache.put(GUILD, SETTINGS, BASE, Verdict.needs_review("not JSON"))
    assert store.writes == 0
    assert await cache.get(GUILD, SETTINGS, BASE) is None


async def test_buckets_are_bounded_newest_first(cache: VerdictCache, store: MemoryCacheStore) -> None:
    for index in range(MAX_ENTRIES_PER_KEY + 3):
        await cache.put(
            GUILD, SETTINGS, fp(BASE.lookup, index << 100), Verdict(False, (), 0, f"n{index}", None)
        )
    key = f"{GUILD}:{SETTINGS.policy_fingerprint()}:x:{hash_to_hex(BASE.lookup)}"
    value = await store.cache_get(NAMESPACE, key)
    assert value is not None
    reasons = [entry["verdict"]["reason"] for entry in value["entries"]]
    assert reasons == [f"n{i}" for i in range(MAX_ENTRIES_PER_KEY + 2, 2, -1)]


async def test_malformed_store_values_are_ignored(cache: VerdictCache, store: MemoryCacheStore) -> None:
    prefix = f"{GUILD}:{SETTINGS.policy_fingerprint()}:"
    await store.cache_set(NAMESPACE, prefix + f"x:{hash_to_hex(BASE.lookup)}", {"entries": "nope"}, 60)
    bad_entry = {"lookup": hash_to_hex(BASE.lookup), "confirm": "zz", "verdict": {}, "expires": 2e9}
    await store.cache_set(NAMESPACE, prefix + band_keys(BASE.lookup)[0], {"entries": [bad_entry, 5]}, 60)
    assert await cache.get(GUILD, SETTINGS, BASE) is None
    await cache.put(GUILD, SETTINGS, BASE, SCAM)
    assert (await cache.get(GUILD, SETTINGS, BASE)) is not None


def test_band_keys_split_the_hash_in_four() -> None:
    assert band_keys(0x0123_4567_89AB_CDEF) == ["b0:0123", "b1:4567", "b2:89ab", "b3:cdef"]
