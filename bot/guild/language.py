"""Languages for alt text: Discord's locales by the name the model understands, and ``auto``.

``auto`` follows the poster: the locale of their Discord client when they used an interaction (Discord
sends it with every interaction), otherwise the server's preferred locale, otherwise English.
"""

from __future__ import annotations

AUTO = "auto"
FALLBACK = "English"

# Discord's locales (https://discord.com/developers/docs/reference#locales) -> language names.
LOCALES: dict[str, str] = {
    "id": "Indonesian",
    "da": "Danish",
    "de": "German",
    "en-GB": "English",
    "en-US": "English",
    "es-ES": "Spanish",
    "es-419": "Latin American Spanish",
    "fr": "French",
    "hr": "Croatian",
    "it": "Italian",
    "lt": "Lithuanian",
    "hu": "Hungarian",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt-BR": "Brazilian Portuguese",
    "ro": "Romanian",
    "fi": "Finnish",
    "sv-SE": "Swedish",
    "vi": "Vietnamese",
    "tr": "Turkish",
    "cs": "Czech",
    "el": "Greek",
    "bg": "Bulgarian",
    "ru": "Russian",
    "uk": "Ukrainian",
    "hi": "Hindi",
    "th": "Thai",
    "zh-CN": "Simplified Chinese",
    "ja": "Japanese",
    "zh-TW": "Traditional Chinese",
    "ko": "Korean",
}

CHOICES: tuple[str, ...] = (
    AUTO, "en-US", "es-ES", "pt-BR", "fr", "de", "it", "nl", "pl", "ru", "uk", "tr", "ja", "ko",
    "zh-CN", "zh-TW", "hi", "id", "vi", "th", "sv-SE", "cs", "el", "ro", "hu",
)
"""What ``/settings alt-text language:`` offers (Discord allows 25 choices); every locale is valid."""


def is_language(code: str) -> bool:
    return code == AUTO or code in LOCALES


def label(code: str) -> str:
    """How a setting reads in ``/settings show`` and the command's choices."""
    if code == AUTO:
        return "auto (the poster's Discord language)"
    return f"{LOCALES.get(code, code)} ({code})"


def language_for(setting: str, *locales: str | None) -> str:
    """The language to write alt text in: the fixed ``setting``, or for ``auto`` the first known of
    ``locales`` (the poster's, then the server's), or English."""
    if setting != AUTO:
        return LOCALES.get(setting, FALLBACK)
    for locale in locales:
        if locale in LOCALES:
            return LOCALES[locale]
    return FALLBACK
