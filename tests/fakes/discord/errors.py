"""Discord API errors as exceptions the REST layer turns into Discord's JSON error bodies."""

from __future__ import annotations

from typing import Any

from . import payloads


class DiscordError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body = payloads.error(code, message, errors)


def invalid_form(path: str, code: str, text: str) -> DiscordError:
    return DiscordError(400, 50035, "Invalid Form Body", payloads.field_error(path, code, text))


def missing_permissions() -> DiscordError:
    return DiscordError(403, 50013, "Missing Permissions")


def missing_access() -> DiscordError:
    return DiscordError(403, 50001, "Missing Access")


def unknown(kind: str) -> DiscordError:
    codes = {
        "channel": 10003,
        "guild": 10004,
        "member": 10007,
        "message": 10008,
        "user": 10013,
        "webhook": 10015,
        "interaction": 10062,
        "application command": 10063,
    }
    return DiscordError(404, codes[kind], f"Unknown {kind.title()}")


def unauthorized() -> DiscordError:
    return DiscordError(401, 0, "401: Unauthorized")
