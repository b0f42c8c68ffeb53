"""`/settings show` as plain text: everything in force in a server and where each part comes from.

Sections are (title, text) pairs the cog puts into an embed; ``<#id>`` / ``<@&id>`` / ``<@id>`` render
as names in Discord (and never ping: embeds do not, and nothing the bot sends may).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from bot.guard.limits import Limits, ServerLimits, narrowed
from bot.guild.config import AltText, ChatMode, GuildSettings
from bot.guild.language import label
from bot.guild.policy import Defaults
from bot.store import SettingsChange

FIELD_LIMIT = 1024
"""Discord's limit for an embed field's value."""
PERSONA_PREVIEW = 200

_MODE_LABELS = {
    ChatMode.MENTION: "when mentioned or replied to",
    ChatMode.EVERY_MESSAGE: "every message (free response)",
    ChatMode.THREAD: "each mention opens a thread",
    ChatMode.OFF: "off",
}


def summary_sections(
    settings: GuildSettings,
    defaults: Defaults,
    *,
    channel_ids: Collection[int],
    changes: Sequence[SettingsChange] = (),
    deployment_limits: Limits | None = None,
) -> list[tuple[str, str]]:
    """The server's settings; ``channel_ids``: the server's channels (the deployment's describe
    channels elsewhere are not this server's business); ``deployment_limits``: the budgets the
    server's own ones stay within."""
    sections = [
        ("Automatic alt text", _describe(settings, defaults, channel_ids)),
        ("Conversation", _chat(settings, defaults)),
        ("Who may use Glimpse", _access(settings)),
        ("Persona", _personas(settings)),
        ("Alt text", _alt_text(settings.alt_text)),
    ]
    if deployment_limits is not None:
        sections.append(("Spending limits", limits_text(settings.limits, deployment_limits)))
    if changes:
        sections.append(("Recent changes", "\n".join(_change(c) for c in changes)))
    return [(title, _fit(text)) for title, text in sections]


def _describe(settings: GuildSettings, defaults: Defaults, channel_ids: Collection[int]) -> str:
    lines = [f"<#{cid}>: {'on' if on else 'off'} (server)" for cid, on in sorted(settings.describe.items())]
    lines += [
        f"<#{cid}>: on (deployment default)"
        for cid in sorted(defaults.describe_channel_ids)
        if cid in channel_ids and cid not in settings.describe
    ]
    return "\n".join(lines) or "Off everywhere (deployment default). Turn it on with `/settings describe`."


def _chat(settings: GuildSettings, defaults: Defaults) -> str:
    lines = [f"<#{cid}>: {_MODE_LABELS[mode]} (server)" for cid, mode in sorted(settings.chat.items())]
    lines.append(f"Everywhere else: {_MODE_LABELS[ChatMode.MENTION]} (default)")
    lines.append(f"Direct messages: {'answered' if defaults.allow_dms else 'not answered'} (deployment)")
    return "\n".join(lines)


def _access(settings: GuildSettings) -> str:
    lines = []
    if settings.allowed_roles:
        lines.append("Only: " + ", ".join(f"<@&{rid}>" for rid in sorted(settings.allowed_roles)))
    else:
        lines.append("Everyone (no allow rule)")
    if settings.blocked_roles:
        lines.append("Blocked roles: " + ", ".join(f"<@&{rid}>" for rid in sorted(settings.blocked_roles)))
    if settings.blocked_users:
        lines.append("Blocked members: " + ", ".join(f"<@{uid}>" for uid in sorted(settings.blocked_users)))
    lines.append("Members with Manage Server can always use `/settings`; moderation applies to everyone.")
    return "\n".join(lines)


def _personas(settings: GuildSettings) -> str:
    own = f"Server: {_preview(settings.persona)} (server)"
    lines = [own if settings.persona else "Server: the built-in one (default)"]
    lines += [f"<#{cid}>: {_preview(text)}" for cid, text in sorted(settings.channel_personas.items())]
    return "\n".join(lines)


def _alt_text(alt: AltText) -> str:
    default = AltText()
    parts = [
        ("Language", label(alt.language), alt.language == default.language),
        ("Length", alt.length.value, alt.length == default.length),
        ("Skip images that already have a description", "yes" if alt.skip_described else "no",
         alt.skip_described == default.skip_described),
    ]
    return "\n".join(f"{name}: {value} ({'default' if is_default else 'server'})" for name, value, is_default in parts)


def limits_text(limits: ServerLimits, deployment: Limits) -> str:
    """The budgets in force in a server and where each comes from, in one line."""
    def budget(own: int | None, allowed: int) -> str:
        effective = narrowed(allowed, own)
        amount = f"{effective:,} tokens a day" if effective else "unlimited"
        return f"{amount} ({'server' if own and effective == own else 'deployment'})"

    roles = ", ".join(f"<@&{role}>" for role in sorted(limits.exempt_role_ids)) or "none"
    return (
        f"Per member: {budget(limits.user_daily, deployment.user_daily)} · whole server: "
        f"{budget(limits.guild_daily, deployment.guild_daily)} · exempt roles: {roles}"
    )


def _change(change: SettingsChange) -> str:
    who = f"<@{change.actor_id}>" if change.actor_id else "Glimpse"
    return f"<t:{int(change.created_at)}:R> {who}: {change.summary}"


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return f"“{flat[:PERSONA_PREVIEW]}{'…' if len(flat) > PERSONA_PREVIEW else ''}”"


def _fit(text: str) -> str:
    return text if len(text) <= FIELD_LIMIT else text[: FIELD_LIMIT - 1] + "…"
