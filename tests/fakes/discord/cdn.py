"""The attachment CDN: signed, expiring URLs on the emulator that serve the bytes a test registered."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import urllib.parse

from aiohttp import web

from .state import Attachment


class Cdn:
    def __init__(self, base_url: str, ttl: float) -> None:
        self.base_url = base_url  # e.g. "http://127.0.0.1:PORT"; set once the server is bound
        self.ttl = ttl
        self._key = secrets.token_bytes(16)
        self.attachments: dict[int, Attachment] = {}
        self.downloads: list[int] = []  # attachment ids, in the order they were fetched

    def register(self, attachment: Attachment) -> None:
        self.attachments[attachment.id] = attachment

    def _signature(self, attachment_id: int, expires: int) -> str:
        return hmac.new(self._key, f"{attachment_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url_for(self, attachment: Attachment) -> str:
        issued = int(time.time())
        expires = issued + int(self.ttl)
        path = (
            f"/attachments/{attachment.channel_id}/{attachment.id}/{urllib.parse.quote(attachment.filename)}"
        )
        query = f"ex={expires:x}&is={issued:x}&hm={self._signature(attachment.id, expires)}&"
        return f"{self.base_url}{path}?{query}"

    async def serve(self, request: web.Request) -> web.Response:
        attachment = self.attachments.get(int(request.match_info["attachment_id"]))
        try:
            expires = int(request.query.get("ex", ""), 16)
        except ValueError:
            expires = -1
        valid = attachment is not None and hmac.compare_digest(
            request.query.get("hm", ""), self._signature(attachment.id, expires)
        )
        if attachment is None or not valid:
            return web.Response(status=404, text="Not Found")
        if expires < time.time():
            return web.Response(status=404, text="This content is no longer available.")
        self.downloads.append(attachment.id)
        return web.Response(body=attachment.data, headers={"Content-Type": attachment.content_type})
