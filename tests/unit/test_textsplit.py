"""Property-style tests of the text splitting and live rendering, over generated texts."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.replies.textsplit import (
    FENCE,
    ZWSP,
    Wrap,
    escape,
    pieces,
    render_live,
    render_preview,
    split_message,
)

WORDS = ["the", "cat", "sat", "on", "a", "mat,", "naïve", "café", "|pipe|", "`tick`", "🙂", "x" * 12]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
    return " ".join(words).capitalize() + rng.choice([".", "!", "?", ":"])


def _code_block(rng: random.Random) -> str:
    lang = rng.choice(["", "python", "js", "c++"])
    lines = [f"    value_{i} = compute({i}, '{rng.choice(WORDS)}')" for i in range(rng.randint(1, 40))]
    return f"{FENCE}{lang}\n" + "\n".join(lines) + f"\n{FENCE}"


def generate_text(rng: random.Random, size: int) -> str:
    """A model-like answer: paragraphs, lists, code blocks, spoilers, long unbroken runs."""
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        kind = rng.random()
        if kind < 0.45:
            parts.append(" ".join(_sentence(rng) for _ in range(rng.randint(1, 8))))
        elif kind < 0.65:
            parts.append("\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(2, 6))))
        elif kind < 0.85:
            parts.append(_code_block(rng))
        elif kind < 0.92:
            parts.append("||spoiler|| and ||| more ``` stray fence")
        else:
            parts.append(rng.choice("abc`|") * rng.randint(50, 400))
    return rng.choice(["\n\n", "\n"]).join(parts)


def _texts(count: int, size: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [generate_text(rng, rng.randint(1, size)) for _ in range(count)]


def _balanced(chunk: str) -> bool:
    return chunk.count(FENCE) % 2 == 0


@pytest.mark.parametrize("limit", [2000, 300, 80])
def test_split_respects_limit_round_trips_and_balances_fences(limit: int) -> None:
    for text in _texts(40, 6000, seed=limit):
        chunks = split_message(text, limit)
        spans = pieces(text, limit)
        assert all(0 < len(chunk) <= limit for chunk in chunks)
        # Round trip: the chunks are the text's spans plus only the fence markers that were added.
        assert "".join(text[p.start : p.end] for p in spans) == text
        assert all(a.end == b.start for a, b in itertools.pairwise(spans))
        assert [p.render(text) for p in spans] == chunks
        for before, after in itertools.pairwise(spans):
            assert bool(before.close) == bool(after.reopen)
            assert before.close in ("", FENCE, "\n" + FENCE)
            assert after.reopen == "" or (after.reopen.startswith(FENCE) and after.reopen.endswith("\n"))
        # Every chunk but the last is a balanced piece of markdown; the last is as balanced as the text.
        assert all(_balanced(chunk) for chunk in chunks[:-1])
        assert _balanced(chunks[-1]) == _balanced(text)


def test_splits_fall_on_whitespace_unless_a_run_is_unbroken() -> None:
    rng = random.Random(5)
    for _ in range(30):
        text = "\n\n".join(" ".join(_sentence(rng) for _ in range(6)) for _ in range(30))
        for piece in pieces(text, 500)[:-1]:
            assert text[piece.end - 1] in " \n"


def test_paragraph_boundary_beats_a_later_word_boundary() -> None:
    first = "word " * 150 + "end.\n\n"  # 756 chars, more than half of the budget
    text = first + "more words " * 200
    assert split_message(text, 1000)[0] == first


def test_unbroken_run_is_cut_hard_but_never_through_a_fence() -> None:
    text = "a" * 5000
    chunks = split_message(text, 2000)
    assert [len(c) for c in chunks] == [1996, 1996, 1008]
    # A run of backticks is cut only between whole fences, so every chunk stays balanced.
    for offset in range(1990, 1997):
        tricky = "a" * offset + "``````" + "b" * 100
        chunks = split_message(tricky, 2000)
        assert len(chunks) == 2 and all(_balanced(c) for c in chunks)


def test_five_thousand_character_answer_with_code_blocks() -> None:
    intro = "Here is the script you asked for, with an explanation after it.\n\n"
    code = "```python\n" + "\n".join(f"print('line {i}')  # step {i}" for i in range(160)) + "\n```\n\n"
    outro = "It prints every step. " * 60
    text = intro + code + outro[: 5000 - len(intro) - len(code)]
    assert len(text) == 5000
    chunks = split_message(text)
    assert len(chunks) == 3
    assert all(len(c) <= 2000 and _balanced(c) for c in chunks)
    # The code block was cut at a line, closed, and reopened with its language.
    assert chunks[0].endswith("\n```")
    assert chunks[1].startswith("```python\nprint(")


def test_render_live_grows_monotonically_and_stays_balanced() -> None:
    for limit in (2000, 120):
        for text in _texts(6, 4000, seed=limit + 1):
            final = split_message(text, limit)
            count = 1
            for end in range(1, len(text) + 1, max(1, len(text) // 150)):
                shown = render_live(text[:end], limit=limit)
                assert all(len(c) <= limit and _balanced(c) for c in shown)
                assert count <= len(shown) <= len(final)
                count = len(shown)
            assert render_live(text, limit=limit, final=True) == final


def test_render_live_closes_an_open_block_for_display() -> None:
    assert render_live("Look:\n```py\nprint(1)") == ["Look:\n```py\nprint(1)\n```"]
    assert render_live("Look:\n```py\nprint(1)\n") == ["Look:\n```py\nprint(1)\n```"]
    # No room for the closing fence: the newest characters wait for the next edit.
    text = "```\n" + "x" * 1996
    (shown,) = render_live(text)
    assert len(shown) == 2000 and shown.endswith("x\n```")
    # Trimming that removes a just-opened fence leaves no dangling fence either.
    (shown,) = render_live("y" * 1996 + "```")
    assert _balanced(shown) and len(shown) <= 2000


def _unframe(chunk: str, wrap: Wrap) -> str:
    if wrap is Wrap.CODE:
        assert chunk.startswith("```\n") and chunk.endswith("\n```")
        assert chunk.count(FENCE) == 2  # nothing inside can close the block
        return chunk[4:-4].replace(ZWSP, "")
    assert chunk.startswith("||") and chunk.endswith("||")
    assert "||" not in chunk[2:-2].replace(ZWSP, "\0")  # nothing inside can end the spoiler
    return chunk[2:-2].replace(ZWSP, "")


@pytest.mark.parametrize("wrap", [Wrap.CODE, Wrap.SPOILER])
@pytest.mark.parametrize("limit", [2000, 100])
def test_wrapped_chunks_are_framed_and_round_trip(wrap: Wrap, limit: int) -> None:
    for text in _texts(25, 5000, seed=7):
        for final in (True, False):
            chunks = render_live(text, limit=limit, wrap=wrap, final=final)
            assert all(len(c) <= limit for c in chunks)
            if wrap is Wrap.SPOILER:
                assert all(_balanced(c) for c in chunks[:-1])
            if final:
                # Minus the frame, the escapes and the fence markers added at splits: the text.
                body = escape(text, wrap)
                spans = pieces(body, limit - (8 if wrap is Wrap.CODE else 5))
                unframed = [_unframe(c, wrap) for c in chunks]
                assert unframed == [p.render(body).replace(ZWSP, "") for p in spans]
                assert "".join(body[p.start : p.end] for p in spans).replace(ZWSP, "") == text
            else:
                for chunk in chunks:
                    _unframe(chunk, wrap)


def test_code_wrap_escapes_fences_in_the_text() -> None:
    (chunk,) = render_live("a ``` b ```` c", wrap=Wrap.CODE, final=True)
    assert chunk.count(FENCE) == 2
    assert chunk.replace(ZWSP, "") == "```\na ``` b ```` c\n```"


def test_spoiler_wrap_keeps_pipes_inside() -> None:
    (chunk,) = render_live("a||b|", wrap=Wrap.SPOILER, final=True)
    assert chunk == f"||a|{ZWSP}|b|{ZWSP}||"


def test_preview_is_short_balanced_and_cut_at_a_boundary() -> None:
    for text in _texts(20, 6000, seed=11):
        for wrap in (None, Wrap.CODE, Wrap.SPOILER):
            preview = render_preview(text, chars=1500, wrap=wrap)
            assert len(preview) <= 1500
            assert _balanced(preview)


def test_limit_too_small_is_refused() -> None:
    with pytest.raises(ValueError):
        split_message("hello", 10)
