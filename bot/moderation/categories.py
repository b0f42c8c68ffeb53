"""What the model may flag. The string values are stored (settings, audit trail): never change them."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    SEXUAL = "sexual"
    VIOLENCE = "violence"
    HATE = "hate"
    SELF_HARM = "self_harm"
    SCAM = "scam"
    PERSONAL_INFO = "personal_info"
    SPAM = "spam"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Short human name for embeds and select menus."""
        return _LABELS[self]

    @property
    def description(self) -> str:
        """What the category covers, as told to the model."""
        return _DESCRIPTIONS[self]


_LABELS = {
    Category.SEXUAL: "Sexual content",
    Category.VIOLENCE: "Violence / gore",
    Category.HATE: "Hate symbols",
    Category.SELF_HARM: "Self-harm",
    Category.SCAM: "Scam / phishing",
    Category.PERSONAL_INFO: "Personal information / doxxing",
    Category.SPAM: "Spam",
    Category.OTHER: "Other rule breach",
}

_DESCRIPTIONS = {
    Category.SEXUAL: "nudity, sexual acts or sexualised content",
    Category.VIOLENCE: "graphic violence, gore, injuries, weapons used against people",
    Category.HATE: "hate symbols, slurs, extremist imagery or propaganda",
    Category.SELF_HARM: "self-harm or suicide shown, encouraged or instructed",
    Category.SCAM: (
        "scams and phishing: fake giveaways or free Nitro/crypto offers, fake login pages, "
        "QR codes or links asking people to log in, pay or scan"
    ),
    Category.PERSONAL_INFO: (
        "personal information of someone: addresses, phone numbers, IDs, documents, "
        "private messages or anything that could dox a person"
    ),
    Category.SPAM: "advertising, unsolicited promotion, server invites, repetitive junk",
    Category.OTHER: "anything else that breaks one of this server's written rules",
}

ALL_CATEGORIES: frozenset[Category] = frozenset(Category)
