"""Checking images for moderation: prepare, fingerprint, cached verdict or one model call, audit.

No discord import: the cog hands in attachments (anything shaped like ``discord.Attachment``) and
acts on the :class:`CheckResult` it gets back. Moderation has its own concurrency lanes (image
jobs and model calls), so a burst of posted images queues behind itself and never takes every
image-worker slot or every model request from chat. Nothing here touches conversation memory.

Just over 400 lines: one check's path (download, prepare, fingerprint, cache, model, audit) reads top
to bottom here; the pieces it calls (cache, policy, prompt, verdict) already have modules of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.guard import Actor, Guard, LimitReached, MeteredVision, Purpose, Refusal, estimate_prompt
from bot.images import (
    MAX_INPUT_BYTES,
    AttachmentLike,
    Detail,
    DownloadFailed,
    DownloadGate,
    ImageRejected,
    ImageWorker,
    PreparedImage,
    SharedImages,
    image_attachments,
)
from bot.metrics import counts_as
from bot.moderation.cache import CLEAN_CONFIRM_DISTANCE, VerdictCache
from bot.moderation.config import ModerationSettings, ModerationSettingsError
from bot.moderation.gate import VerdictGate
from bot.moderation.ledger import EntryLedger
from bot.moderation.phash import LOOKUP_DISTANCE, ImageFingerprint, fingerprint, hash_to_hex
from bot.moderation.policy import Decision, MissingPermissionNotices, OutageNotices, RefusedDeletes
from bot.moderation.prompt import (
    MODERATION_TEMPERATURE,
    RESPONSE_FORMAT_JSON_OBJECT,
    build_moderation_messages,
)
from bot.moderation.verdict import Verdict, parse_verdict
from bot.store import AuditGroup, AuditRecord, Store
from bot.vlm import VisionClient, VisionError

log = logging.getLogger(__name__)

OVER_BUDGET = "this server's moderation budget for today is used up"

SETTINGS_KEY = "moderation"
MODEL_LANE = 2
"""Moderation model requests in flight at once (chat has its own, unrelated budget)."""
IMAGE_LANE = 2
"""Moderation image jobs (download, prepare, fingerprint) at once; the shared worker holds 16."""
MAX_IMAGES_PER_MESSAGE = 4
SERVICE_FAILED = "the model service failed"
"""How a needs-review verdict begins when the provider, not the image, was the problem."""


@dataclass(frozen=True)
class CheckResult:
    """One image's verdict and what it cost. ``image`` is ``None`` when it could not be read."""

    verdict: Verdict
    image: PreparedImage | None = None
    fingerprint: ImageFingerprint | None = None
    cached: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    over_budget: Refusal | None = None
    """Why it was not checked: the server's moderation budget is used up (moderators get one notice
    a day, not an entry per image)."""

    @property
    def service_failed(self) -> bool:
        """The model service failed (an outage, a revoked key): nothing is known about the image."""
        return (self.verdict.review_reason or "").startswith(SERVICE_FAILED)

    def audit_detail(self) -> dict[str, Any]:
        """Small JSON extras for the audit trail (never image bytes)."""
        detail: dict[str, Any] = {
            "categories": [c.value for c in self.verdict.categories],
            "reason": self.verdict.reason,
            "rule": self.verdict.rule,
            "cached": self.cached,
        }
        if self.verdict.review_reason is not None:
            detail["needs_review"] = self.verdict.review_reason
        if self.fingerprint is not None:
            detail["hash"] = hash_to_hex(self.fingerprint.lookup)
        if self.prompt_tokens is not None:
            detail["tokens"] = {"prompt": self.prompt_tokens, "completion": self.completion_tokens}
        return detail


def _over_budget(image: PreparedImage, fp: ImageFingerprint, refusal: Refusal) -> CheckResult:
    log.info("Moderation check skipped: %s", OVER_BUDGET)
    return CheckResult(Verdict.needs_review(OVER_BUDGET), image, fp, over_budget=refusal)


def verdict_category(verdict: Verdict) -> str:
    """The audit category of a verdict: its first category, ``none`` or ``needs_review``."""
    if verdict.requires_review:
        return "needs_review"
    return verdict.categories[0].value if verdict.categories else "none"


class ModerationService:
    """Per-guild settings, image checks and the audit trail, over the bot's shared services."""

    def __init__(
        self,
        *,
        store: Store,
        vision: VisionClient,
        guard: Guard,
        images: ImageWorker,
        shared: SharedImages | None = None,
        model_lane: int = MODEL_LANE,
        image_lane: int = IMAGE_LANE,
        response_format: dict[str, Any] | None = RESPONSE_FORMAT_JSON_OBJECT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.vision = vision
        self.guard = guard  # every check is paid from the server's moderation budget
        self.images = images
        # The bot passes its one (over its one download gate): describe and chat then reuse the
        # download and decode of a checked image.
        self.shared = shared if shared is not None else SharedImages(images, DownloadGate())
        self.cache = VerdictCache(store, clock=clock)
        # Reported missing permissions, in the store (shared by processes, kept across restarts).
        self.notices = MissingPermissionNotices(store)
        self.outages = OutageNotices(store)
        self.gate = VerdictGate()  # describe and chat wait here for a watched message's verdict
        # Per-process memory of the Discord side (refused deletes, clicks).
        self.refused_deletes = RefusedDeletes()
        self.entries = EntryLedger()
        self.response_format = response_format
        self._model_lane = asyncio.Semaphore(model_lane)
        self._image_lane = asyncio.Semaphore(image_lane)
        # Checks waiting for the model, per (guild, policy): near-identical images join them.
        self._in_flight: dict[tuple[int, str], list[tuple[ImageFingerprint, asyncio.Future[Verdict | None]]]] = {}
        self._clock = clock

    # -- settings ------------------------------------------------------------------------------------

    async def settings(self, guild_id: int) -> ModerationSettings | None:
        """The guild's settings, or ``None`` when moderation was never set up (or the record is bad)."""
        return (await self.versioned_settings(guild_id))[0]

    async def versioned_settings(self, guild_id: int) -> tuple[ModerationSettings | None, int]:
        """:meth:`settings` and the stored record's version (for a form that saves what it showed)."""
        record = await self.store.load_guild_settings(guild_id, SETTINGS_KEY)
        return _readable(guild_id, record.value), record.version

    async def save_settings(
        self,
        guild_id: int,
        change: Callable[[ModerationSettings], ModerationSettings],
        *,
        actor_id: int | None,
        summary: str = "moderation settings",
        expected_version: int | None = None,
    ) -> ModerationSettings:
        """Apply ``change`` to the stored settings (the defaults if none) by compare-and-set.

        Raises :class:`ModerationSettingsError` (invalid) or :class:`bot.store.SettingsConflictError`
        (``expected_version``, the version a form was filled from, is not the stored one any more).
        """
        stored = await self.store.update_guild_settings(
            guild_id,
            SETTINGS_KEY,
            lambda raw: change(_readable(guild_id, raw) or ModerationSettings()).to_dict(),
            actor_id=actor_id,
            summary=summary,
            expected_version=expected_version,
        )
        assert stored.value is not None
        return ModerationSettings.from_dict(stored.value)

    # -- checks --------------------------------------------------------------------------------------

    @counts_as("moderation")
    async def check_attachments(
        self,
        guild_id: int,
        settings: ModerationSettings,
        attachments: Sequence[AttachmentLike],
        *,
        expect: Detail | None = None,
    ) -> list[CheckResult]:
        """Check a message's image attachments (the first :data:`MAX_IMAGES_PER_MESSAGE`) concurrently.
        ``expect``: describe or chat will use these images with that policy once the verdict is in."""
        images = image_attachments(attachments)[:MAX_IMAGES_PER_MESSAGE]
        checks = (self.check_attachment(guild_id, settings, a, expect=expect) for a in images)
        return list(await asyncio.gather(*checks))

    async def check_attachment(
        self, guild_id: int, settings: ModerationSettings, attachment: AttachmentLike, *, expect: Detail | None = None
    ) -> CheckResult:
        """Download and check one attachment; whatever goes wrong ends as a needs-review verdict.
        ``expect``: the policy another feature will prepare it with (one download and decode for both)."""
        if attachment.size > MAX_INPUT_BYTES:  # refused here too, so it never waits for a lane slot
            return CheckResult(Verdict.needs_review(f"the file is larger than {MAX_INPUT_BYTES // 2**20} MB"))
        async with self._image_lane:
            try:
                image, fp = await self._prepare(attachment, settings, expect)
            except DownloadFailed:
                return CheckResult(Verdict.needs_review("the image could not be downloaded"))
            except ImageRejected as rejected:
                return CheckResult(Verdict.needs_review(f"the image could not be read: {rejected.reason}"))
        return await self._judge(guild_id, settings, image, fp)

    async def _prepare(
        self, attachment: AttachmentLike, settings: ModerationSettings, expect: Detail | None
    ) -> tuple[PreparedImage, ImageFingerprint]:
        image = await self.shared.prepare(attachment, settings.detail, expect=expect)
        # The prepared copy is hashed (small, already decoded once): copies of one image at other
        # sizes or encodings become near-identical prepared images.
        fp = await self.images.run(fingerprint, image.data)
        return image, fp

    async def _judge(
        self, guild_id: int, settings: ModerationSettings, image: PreparedImage, fp: ImageFingerprint
    ) -> CheckResult:
        hit = await self.cache.get(guild_id, settings, fp)
        if hit is not None:
            log.debug(
                "moderation cache hit in guild %s (%d/%d bits)", guild_id, hit.lookup_distance, hit.confirm_distance
            )
            return CheckResult(hit.verdict, image, fp, cached=True)
        scope = (guild_id, settings.policy_fingerprint())
        shared = await self._in_flight_verdict(scope, fp)
        if shared is not None:
            return CheckResult(shared, image, fp, cached=True)
        admission = await self.guard.admit(Actor(Purpose.MODERATION, guild_id=guild_id))
        if isinstance(admission, Refusal):
            return _over_budget(image, fp, admission)
        pending: asyncio.Future[Verdict | None] = asyncio.get_running_loop().create_future()
        entry = (fp, pending)
        self._in_flight.setdefault(scope, []).append(entry)
        verdict: Verdict | None = None
        try:
            messages = build_moderation_messages(
                image.content_part(), rules=settings.rules, categories=settings.categories
            )
            model = MeteredVision(admission, self.vision)
            async with self._model_lane:
                verdict, usage = await self._ask(model, messages, estimate_prompt(messages, [image]), settings)
            await self.cache.put(guild_id, settings, fp, verdict)
        except LimitReached as limit:
            return _over_budget(image, fp, limit.refusal)
        finally:
            pending.set_result(verdict)
            waiting = self._in_flight[scope]
            waiting.remove(entry)
            if not waiting:
                del self._in_flight[scope]
        assert verdict is not None  # set unless the model call raised
        return CheckResult(
            verdict,
            image,
            fp,
            prompt_tokens=usage[0] if usage else None,
            completion_tokens=usage[1] if usage else None,
        )

    async def _in_flight_verdict(self, scope: tuple[int, str], fp: ImageFingerprint) -> Verdict | None:
        """The verdict of a check of a (very) near-identical image already waiting for the model, so a
        burst of reposts costs one request; ``None`` when there is none or it gave no usable verdict."""
        for other, pending in self._in_flight.get(scope, []):
            lookup, confirm = fp.distance(other)
            # The verdict is not known yet: demand the closeness required for reusing a clean one.
            if lookup <= LOOKUP_DISTANCE and confirm <= CLEAN_CONFIRM_DISTANCE:
                verdict = await asyncio.shield(pending)
                if verdict is not None and not verdict.requires_review:
                    return verdict
                return None
        return None

    async def _ask(
        self, model: MeteredVision, messages: list[dict[str, Any]], estimate: int, settings: ModerationSettings
    ) -> tuple[Verdict, tuple[int, int] | None]:
        """One model call; a provider that refuses ``response_format`` is asked once more without it
        (and not asked with it again in this process). Raises :class:`LimitReached` over budget."""
        response_format = self.response_format
        while True:
            try:
                completion = await model.complete(
                    messages, estimate=estimate, temperature=MODERATION_TEMPERATURE, response_format=response_format
                )
            except LimitReached:
                raise
            except VisionError as error:
                if error.kind == "bad_request" and response_format is not None:
                    log.warning(
                        "The model service refused the moderation request with response_format (%s); trying without it",
                        error.detail,
                    )
                    response_format = None
                    continue
                log.warning("Moderation check failed: %s (%s)", error.kind, error.detail)
                return Verdict.needs_review(f"{SERVICE_FAILED}: {error.reason}"), None
            if response_format is None and self.response_format is not None:
                self.response_format = None  # it worked without: the provider lacks JSON mode
            usage = (completion.usage.prompt_tokens, completion.usage.completion_tokens) if completion.usage else None
            if completion.finish_reason == "length":
                return Verdict.needs_review("the answer was cut off"), usage
            return parse_verdict(completion.text, allowed_categories=settings.categories), usage

    # -- audit trail ---------------------------------------------------------------------------------

    async def record_verdict(
        self,
        guild_id: int,
        result: CheckResult,
        *,
        channel_id: int | None,
        message_id: int | None,
        user_id: int | None,
        actor_id: int | None = None,
        kind: str = "verdict",
    ) -> None:
        """Store a verdict; ``kind="check"`` with ``actor_id`` for a moderator's manual check."""
        verdict = result.verdict
        await self._audit(
            guild_id,
            AuditRecord(
                kind=kind,
                category=verdict_category(verdict),
                action="log" if verdict.should_log else "none",
                severity=verdict.severity,
                channel_id=channel_id,
                message_id=message_id,
                user_id=user_id,
                actor_id=actor_id,
                created_at=self._clock(),
                detail=result.audit_detail(),
            ),
        )

    async def record_action(
        self,
        guild_id: int,
        action: str,
        *,
        channel_id: int | None,
        message_id: int | None,
        user_id: int | None,
        actor_id: int | None,
        category: str = "",
        severity: int = 0,
        ok: bool = True,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Store an action (``delete``, ``timeout``, ``dismiss``) by the bot (``actor_id=None``) or a
        moderator; a failed one is stored as ``kind="error"``."""
        await self._audit(
            guild_id,
            AuditRecord(
                kind="action" if ok else "error",
                category=category,
                action=action,
                severity=severity,
                channel_id=channel_id,
                message_id=message_id,
                user_id=user_id,
                actor_id=actor_id,
                created_at=self._clock(),
                detail=detail or {},
            ),
        )

    async def record_decision(
        self,
        guild_id: int,
        verdict: Verdict,
        decision: Decision,
        *,
        channel_id: int,
        message_id: int,
        user_id: int,
        deleted: bool,
        timed_out: bool,
    ) -> None:
        """The bot's automatic actions for one message (what was done, and what was blocked)."""
        common: dict[str, Any] = {
            "channel_id": channel_id,
            "message_id": message_id,
            "user_id": user_id,
            "actor_id": None,
            "category": verdict_category(verdict),
            "severity": verdict.severity,
        }
        if decision.delete:
            await self.record_action(guild_id, "delete", ok=deleted, **common)
        if decision.timeout_seconds is not None:
            await self.record_action(
                guild_id, "timeout", ok=timed_out, **common, detail={"seconds": decision.timeout_seconds}
            )
        for permission in sorted(decision.missing):
            await self.record_action(
                guild_id, "missing_permission", ok=False, **common, detail={"permission": permission.value}
            )

    async def audit_since(self, guild_id: int, since: float) -> list[AuditRecord]:
        return await self.store.audit_records(guild_id, since=since, limit=None)

    async def stats(self, guild_id: int, windows_days: Sequence[int], now: float) -> dict[int, dict[AuditGroup, int]]:
        """Each window's audit tally, counted by the store (days -> groups)."""
        return {days: await self.store.audit_tally(guild_id, now - days * 86400) for days in windows_days}

    async def _audit(self, guild_id: int, record: AuditRecord) -> None:
        try:
            await self.store.add_audit(guild_id, record)
        except Exception:
            # The audit trail must not stop moderation itself; the failure is loud in the logs.
            log.exception("Could not store a moderation audit record for guild %s", guild_id)


def _readable(guild_id: int, raw: dict[str, Any] | None) -> ModerationSettings | None:
    if raw is None:
        return None
    try:
        return ModerationSettings.from_dict(raw)
    except ModerationSettingsError as error:
        log.error("Stored moderation settings of guild %s are invalid (%s); ignoring them", guild_id, error)
        return None
