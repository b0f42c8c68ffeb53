"""The pure conversation model: budget, images, names, placeholders."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bot.conversation.planner import MIN_CURRENT_CHARS, plan_request
from bot.conversation.turns import (
    ContextSummary,
    ImageRef,
    MemoryLimits,
    Turn,
    current_session,
    estimate_text_tokens,
    may_reveal_spoiler,
    summarize,
    turns_in_reach,
)

NOW = 1_700_000_000.0
SYSTEM = "You are Glimpse."


def ref(n: int, tokens: int = 300) -> ImageRef:
    return ImageRef(sha256=f"{n:064x}", mime="image/jpeg", width=512, height=512, tokens=tokens)


def user(text: str, *images: ImageRef, at: float, name: str = "Alice", author: int = 1) -> Turn:
    return Turn("user", name, author, text, images, created_at=at)


def bot(text: str, *, at: float) -> Turn:
    return Turn("assistant", "Glimpse", 99, text, created_at=at)


def conversation(turns: int, images: int = 0) -> list[Turn]:
    """Alternating user/assistant turns, one second apart; the first ``images`` user turns have one."""
    history: list[Turn] = []
    for i in range(turns):
        at = NOW - 1000 + i
        if i % 2 == 0:
            attached = (ref(i),) if i // 2 < images else ()
            history.append(user(f"question {i} " + "x" * 80, *attached, at=at, name=f"user{i % 3}"))
        else:
            history.append(bot(f"description of turn {i - 1}: a red car " + "y" * 120, at=at))
    return history


def image_urls(messages: list[dict[str, Any]]) -> list[str]:
    return [
        part["image_url"]["url"]
        for message in messages
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image_url"
    ]


def all_text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def test_long_history_stays_within_the_budget_and_sends_the_newest_images() -> None:
    history = conversation(50, images=20)
    assert sum(len(t.images) for t in history) == 20
    limits = MemoryLimits(max_turns=50, max_tokens=3000, max_images_per_request=2)
    current = user("what colour is the car in the second picture?", at=NOW)

    plan = plan_request(system_prompt=SYSTEM, history=history, current=current, limits=limits, now=NOW)
    messages = plan.render({})

    assert plan.tokens <= limits.max_tokens
    assert not plan.over_budget
    assert 0 < plan.history_turns < 50
    assert plan.images_sent == 2
    newest_two = [image.sha256 for turn in history for image in turn.images][-2:]
    assert list(plan.image_hashes) == newest_two
    included = history[-plan.history_turns:]
    assert plan.images_as_text == sum(len(turn.images) for turn in included) - 2 > 0
    assert sum("\n[image: description of turn" in all_text(m) for m in messages) == plan.images_as_text
    assert messages[0] == {"role": "system", "content": SYSTEM}
    assert all_text(messages[-1]) == "Alice: what colour is the car in the second picture?"
    # the rendered request is really this small by the same estimate
    estimated = sum(estimate_text_tokens(all_text(m)) + 4 for m in messages) + 2 * 300
    assert estimated <= limits.max_tokens


def test_turn_limit_counts_history_turns() -> None:
    history = conversation(30)
    plan = plan_request(
        system_prompt=SYSTEM,
        history=history,
        current=user("hi", at=NOW),
        limits=MemoryLimits(max_turns=6, max_tokens=100_000),
        now=NOW,
    )
    assert plan.history_turns == 6
    assert plan.history_dropped == 24
    assert [m.text for m in plan.messages[1:-1]] == [
        (f"user{i % 3}: " if i % 2 == 0 else "") + history[i].text for i in range(24, 30)
    ]


def test_history_never_starts_with_an_answer_whose_question_was_left_out() -> None:
    """An answer without its question misleads the model, and chat templates that insist on
    user/assistant alternation refuse a request whose first message after the system is the model's."""
    history = conversation(30)
    by_turns = plan_request(
        system_prompt=SYSTEM, history=history, current=user("hi", at=NOW),
        limits=MemoryLimits(max_turns=5, max_tokens=100_000), now=NOW,
    )
    assert [m.role for m in by_turns.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert (by_turns.history_turns, by_turns.history_dropped) == (4, 26)

    long_question = [user("q" * 4000, at=NOW - 20), bot("A short answer.", at=NOW - 10)]
    by_tokens = plan_request(
        system_prompt=SYSTEM, history=long_question, current=user("hi", at=NOW),
        limits=MemoryLimits(max_tokens=500), now=NOW,
    )
    assert [m.role for m in by_tokens.messages] == ["system", "user"]
    assert by_tokens.tokens == sum(estimate_text_tokens(m.text) + 4 for m in by_tokens.messages)


def test_turns_in_reach_are_what_a_plan_may_take_before_the_token_budget() -> None:
    history = conversation(30)
    limits = MemoryLimits(max_turns=5, max_tokens=100_000, idle_seconds=3600)
    reach = turns_in_reach(history, limits=limits, now=NOW)
    plan = plan_request(system_prompt=SYSTEM, history=history, current=user("hi", at=NOW), limits=limits, now=NOW)
    assert list(reach) == history[26:] and plan.history_turns == len(reach)
    assert turns_in_reach(history, limits=replace(limits, max_turns=1), now=NOW) == []
    assert turns_in_reach(history, limits=limits, now=NOW + 5000) == []  # idle: a fresh start


def test_current_images_come_first_and_history_images_are_described() -> None:
    history = [
        user("look at my car", ref(1), at=NOW - 60, name="Bob"),
        bot("A red hatchback parked by a lake.", at=NOW - 59),
    ]
    current = user("and these?", ref(2), ref(3), at=NOW)
    plan = plan_request(
        system_prompt=SYSTEM, history=history, current=current,
        limits=MemoryLimits(max_images_per_request=2), now=NOW,
    )
    assert plan.image_hashes == (ref(2).sha256, ref(3).sha256)
    messages = plan.render({ref(2).sha256: "data:image/jpeg;base64,AA==", ref(3).sha256: b"\x01\x02"})
    assert messages[1] == {
        "role": "user",
        "content": "Bob: look at my car\n[image: A red hatchback parked by a lake.]",
    }
    assert messages[2] == {"role": "assistant", "content": "A red hatchback parked by a lake."}
    assert image_urls(messages) == [
        "data:image/jpeg;base64,AA==",
        "data:image/jpeg;base64," + base64.b64encode(b"\x01\x02").decode(),
    ]
    assert messages[-1]["content"][0] == {"type": "text", "text": "Alice: and these?"}
    assert plan.images_as_text == 1


def test_a_request_without_names_sends_the_question_as_asked() -> None:
    """Describe asks through the planner too, but as one person's request: no "Name:" prefix."""
    current = user("Write alt text for this image.", ref(2), at=NOW)
    plan = plan_request(system_prompt=SYSTEM, history=[], current=current, limits=MemoryLimits(), now=NOW, named=False)
    messages = plan.render({ref(2).sha256: "data:image/jpeg;base64,AA=="})
    assert messages[0] == {"role": "system", "content": SYSTEM}
    assert messages[1]["content"] == [
        {"type": "text", "text": "Write alt text for this image."},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AA==", "detail": "auto"}},
    ]


def test_an_image_is_sent_once_per_request() -> None:
    history = [user("", ref(1), at=NOW - 60, name="Bob"), bot("A cat.", at=NOW - 59)]
    current = user("what breed is the cat above?", ref(1), at=NOW)
    plan = plan_request(system_prompt=SYSTEM, history=history, current=current, limits=MemoryLimits(),
                        now=NOW)
    assert plan.images_sent == 1
    assert plan.messages[1].text == "Bob: \n[image: the same picture as shown later]"
    assert plan.messages[-1].images == (ref(1),)


def test_history_image_is_sent_when_slots_remain() -> None:
    history = [user("", ref(1), at=NOW - 60, name="Bob"), bot("A cat on a sofa.", at=NOW - 59)]
    plan = plan_request(
        system_prompt=SYSTEM, history=history, current=user("what breed?", at=NOW),
        limits=MemoryLimits(), now=NOW,
    )
    assert plan.image_hashes == (ref(1).sha256,)
    assert plan.messages[1].text == "Bob: "
    assert plan.images_as_text == 0


def test_placeholder_description_is_truncated_and_whitespace_folded() -> None:
    long = "A very\n\nlong description " + "z" * 500
    history = [user("pic", ref(1), at=NOW - 9), user("another", at=NOW - 8), bot(long, at=NOW - 7)]
    plan = plan_request(
        system_prompt=SYSTEM, history=history, current=user("?", at=NOW),
        limits=MemoryLimits(max_images_per_request=0, description_chars=40), now=NOW,
    )
    first = plan.messages[1].text
    assert first.startswith("Alice: pic\n[image: A very long description zzz")
    placeholder = first.split("\n", 1)[1]
    assert len(placeholder) == len("[image: ]") + 40 and placeholder.endswith("…]")


def test_undescribed_image_gets_a_neutral_placeholder() -> None:
    history = [user("pic", ref(1), at=NOW - 9)]
    plan = plan_request(
        system_prompt=SYSTEM, history=history, current=user("?", at=NOW),
        limits=MemoryLimits(max_images_per_request=0), now=NOW,
    )
    assert plan.messages[1].text == "Alice: pic\n[image: an earlier image, not described]"


def test_names_are_prefixed_and_cleaned() -> None:
    history = [user("hello", at=NOW - 5, name="  Zoë \n the\tgreat "), bot("Hi!", at=NOW - 4)]
    plan = plan_request(
        system_prompt=SYSTEM, history=history, current=user("again", at=NOW, name="x" * 100),
        limits=MemoryLimits(), now=NOW,
    )
    assert plan.messages[1].text == "Zoë the great: hello"
    assert plan.messages[2].text == "Hi!"
    assert plan.messages[-1].text == "x" * 63 + "…: again"


def test_idle_gap_starts_a_fresh_conversation() -> None:
    limits = MemoryLimits(idle_seconds=600)
    history = [
        user("old topic", at=NOW - 5000), bot("old answer", at=NOW - 4990),
        user("new topic", at=NOW - 300), bot("new answer", at=NOW - 290),
    ]
    plan = plan_request(system_prompt=SYSTEM, history=history, current=user("?", at=NOW), limits=limits,
                        now=NOW)
    assert [m.text for m in plan.messages[1:-1]] == ["Alice: new topic", "new answer"]
    stale = plan_request(system_prompt=SYSTEM, history=history[:2], current=user("?", at=NOW),
                         limits=limits, now=NOW)
    assert (stale.history_turns, stale.history_dropped) == (0, 2)
    assert current_session(history, idle_seconds=600, now=NOW) == history[2:]
    assert current_session(history, idle_seconds=600, now=NOW + 10_000) == []
    assert current_session(history, idle_seconds=10_000, now=NOW) == history


def test_history_stays_contiguous() -> None:
    """A big old turn that does not fit ends the history even if smaller, older turns would fit."""
    history = [user("tiny", at=NOW - 30), user("w" * 4000, at=NOW - 20), user("recent", at=NOW - 10)]
    plan = plan_request(system_prompt=SYSTEM, history=history, current=user("?", at=NOW),
                        limits=MemoryLimits(max_tokens=600), now=NOW)
    assert [m.text for m in plan.messages[1:-1]] == ["Alice: recent"]


def test_current_turn_alone_over_budget_is_cut_but_always_sent() -> None:
    limits = MemoryLimits(max_tokens=600, max_images_per_request=1)
    current = user("q" * 10_000, ref(7, tokens=400), ref(8), at=NOW)
    plan = plan_request(system_prompt=SYSTEM, history=conversation(10), current=current, limits=limits,
                        now=NOW)
    last = plan.messages[-1]
    assert plan.history_turns == 0
    assert last.images == (ref(7, tokens=400),)  # images are never cut, only text
    assert last.text.startswith("Alice: qqq") and last.text.endswith("…")
    assert plan.tokens <= limits.max_tokens
    assert plan.images_as_text == 1

    # when even the images leave no room, the text keeps its minimum and the plan says so
    huge = user("q" * 10_000, ref(9, tokens=2000), at=NOW)
    plan = plan_request(system_prompt=SYSTEM, history=[], current=huge, limits=limits, now=NOW)
    assert len(plan.messages[-1].text) == MIN_CURRENT_CHARS
    assert plan.over_budget and plan.tokens > limits.max_tokens


def test_extra_current_images_are_noted() -> None:
    current = user("three pics", ref(1), ref(2), ref(3), at=NOW)
    plan = plan_request(system_prompt=SYSTEM, history=[], current=current,
                        limits=MemoryLimits(max_images_per_request=2), now=NOW)
    assert plan.messages[-1].text == "Alice: three pics\n[1 more image(s) not sent: limit of 2 per request]"
    assert plan.image_hashes == (ref(1).sha256, ref(2).sha256)


@dataclass(frozen=True)
class FakePrepared:
    data: bytes
    mime: str = "image/png"
    width: int = 10
    height: int = 10
    detail: str = "low"
    tokens: int = 85

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def content_part(self) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": "prepared!", "detail": self.detail}}


def test_render_accepts_prepared_images_and_survives_missing_ones() -> None:
    prepared = FakePrepared(b"png")
    image = ImageRef.of(prepared)
    assert image == ImageRef(prepared.sha256, "image/png", 10, 10, 85, "low")
    plan = plan_request(system_prompt=SYSTEM, history=[user("old", ref(5), at=NOW - 5)],
                        current=user("new", image, at=NOW), limits=MemoryLimits(), now=NOW)
    messages = plan.render({prepared.sha256: prepared})
    assert image_urls(messages) == ["prepared!"]
    assert messages[1] == {"role": "user", "content": "Alice: old\n[image no longer available]"}


def test_turn_validation() -> None:
    with pytest.raises(ValueError, match="assistant"):
        Turn("assistant", "Glimpse", 1, "x", (ref(1),))
    with pytest.raises(ValueError, match="role"):
        Turn("system", "x", 1, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user turn"):
        plan_request(system_prompt="", history=[], current=bot("x", at=NOW), limits=MemoryLimits())
    assert Turn("user", "a", 1, "x", [ref(1)]).images == (ref(1),)  # type: ignore[arg-type]


def test_a_spoiler_image_within_reach_of_a_plan_calls_for_spoiler_bars() -> None:
    hidden = replace(ref(1), spoiler=True)
    history = [
        user("who wins?", hidden, at=NOW - 100), bot("The hero wins.", at=NOW - 99),
        user("thanks", at=NOW - 50), bot("You are welcome.", at=NOW - 49),
    ]
    limits = MemoryLimits(max_turns=4, max_images_per_request=0, idle_seconds=600)
    assert may_reveal_spoiler(history, limits=limits, now=NOW)
    # the plan indeed describes the spoiler image (and its answer) in text, though it sends no image
    plan = plan_request(system_prompt=SYSTEM, history=history, current=user("?", at=NOW), limits=limits, now=NOW)
    assert plan.messages[1].text == "Alice: who wins?\n[image: The hero wins.]" and plan.images_sent == 0

    # the oldest turn in reach is the answer about the spoiler: a plan leaves out an answer without
    # its question, so neither the image nor what was said about it goes, and no bars are needed
    edge = [*history, user("more", at=NOW - 40)]
    assert not may_reveal_spoiler(edge, limits=limits, now=NOW)
    edge_plan = plan_request(system_prompt=SYSTEM, history=edge, current=user("?", at=NOW), limits=limits, now=NOW)
    assert [m.text for m in edge_plan.messages[1:]] == ["Alice: thanks", "You are welcome.", "Alice: more", "Alice: ?"]
    assert may_reveal_spoiler(edge, limits=replace(limits, max_turns=5), now=NOW)
    # out of reach: beyond the turn limit, after an idle gap, or no memory used at all
    assert not may_reveal_spoiler([*edge, bot("ok", at=NOW - 39)], limits=limits, now=NOW)
    assert not may_reveal_spoiler(history, limits=limits, now=NOW + 1000)
    assert not may_reveal_spoiler(history, limits=replace(limits, max_turns=0), now=NOW)
    assert not may_reveal_spoiler([replace(t, images=(ref(1),)) if t.images else t for t in history],
                                  limits=limits, now=NOW)


def test_image_refs_carry_the_spoiler_flag() -> None:
    prepared = FakePrepared(b"hidden")
    assert ImageRef.of(prepared, spoiler=True).spoiler
    assert not ImageRef.of(prepared).spoiler


def test_summary() -> None:
    history = [user("a" * 40, ref(1), at=NOW - 100), bot("b" * 40, at=NOW - 50), user("c", ref(1), at=NOW)]
    summary = summarize(history)
    assert summary == ContextSummary(turns=3, images=1, tokens=10 + 10 + 1 + 600 + 12,
                                     oldest_at=NOW - 100, newest_at=NOW)
    assert summary.age_seconds(NOW + 10) == 110
    assert summarize([]).age_seconds() == 0.0


def test_limits_from_settings() -> None:
    from bot.settings import Settings

    settings = Settings.from_env({"DISCORD_TOKEN": "t", "VLM_API_KEY": "k", "MEMORY_IDLE_MINUTES": "5"})
    limits = MemoryLimits.from_settings(settings)
    assert limits == MemoryLimits(max_turns=20, max_tokens=6000, max_images_per_request=2, idle_seconds=300)
