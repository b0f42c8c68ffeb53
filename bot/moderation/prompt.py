"""The moderation request: messages, the JSON verdict format and its ``response_format``.

The server's rules are data written by its moderators and go into the system message inside
markers (any marker look-alike inside them is neutralised). Text inside the image is content to
judge, never instructions; the strict parser (``verdict.py``) is the actual guarantee that nothing
the model says can change the format or cause an action.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from bot.moderation.categories import Category
from bot.moderation.verdict import MAX_REASON_CHARS, MAX_RULE_CHARS
from bot.prompts import MODERATION_INSTRUCTIONS, MODERATION_REQUEST

MODERATION_TEMPERATURE = 0.0
RESPONSE_FORMAT_JSON_OBJECT: dict[str, Any] = {"type": "json_object"}

_RULES_OPEN, _RULES_CLOSE = "<server_rules>", "</server_rules>"
_MARKER_LOOKALIKE = re.compile(r"<\s*/?\s*server_rules\s*/?\s*>", re.IGNORECASE)



def build_moderation_messages(
    image_part: dict[str, Any], *, rules: str, categories: Collection[Category]
) -> list[dict[str, Any]]:
    """Chat messages asking for a verdict on one image.

    ``image_part`` is an OpenAI ``{"type": "image_url", "image_url": {"url": ..., "detail": ...}}``
    content part, as produced for a prepared image."""
    if image_part.get("type") != "image_url" or not isinstance(image_part.get("image_url"), dict):
        raise ValueError("image_part must be an image_url content part")
    if not categories:
        raise ValueError("at least one category is needed")
    system = MODERATION_INSTRUCTIONS.format(
        categories=_category_lines(categories),
        open=_RULES_OPEN,
        close=_RULES_CLOSE,
        rules=_neutralise_markers(rules.strip()) or "(No written rules: judge by the categories above.)",
        reason_chars=MAX_REASON_CHARS,
        rule_chars=MAX_RULE_CHARS,
    )
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "text", "text": MODERATION_REQUEST}, image_part]},
    ]


def _category_lines(categories: Collection[Category]) -> str:
    """One line per category, in the enum's order, so the prompt is stable for a given set."""
    return "\n".join(f"- {c.value}: {c.description}" for c in Category if c in categories)


def _neutralise_markers(rules: str) -> str:
    """Rules cannot close the rules block early: marker look-alikes lose their angle brackets."""
    return _MARKER_LOOKALIKE.sub("(server_rules)", rules)
