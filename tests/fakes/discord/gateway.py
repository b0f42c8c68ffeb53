"""The gateway websocket: HELLO, heartbeats, IDENTIFY/READY/GUILD_CREATE, RESUME with replay, op 7, closes.

Sessions outlive their websocket so a RESUME can replay what was dispatched while the bot was away.
Frames are JSON text, or zlib-stream binary when the client asks for ``compress=zlib-stream``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from . import payloads
from .records import Recorder
from .state import World

_log = logging.getLogger(__name__)

JSON = dict[str, Any]

GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15

# Close codes discord.py treats specially.
AUTHENTICATION_FAILED = 4004
INVALID_SHARD = 4010
DISALLOWED_INTENTS = 4014


@dataclass
class GatewayConfig:
    heartbeat_interval_ms: int = 41_250
    message_content_granted: bool = True
    members_granted: bool = True
    presences_granted: bool = True
    compression: bool = True  # honour ``compress=zlib-stream``
    replay_buffer: int = 1000
    recommended_shards: int = 1  # what GET /gateway/bot tells an auto-sharded bot


class _Connection:
    """One websocket, with its zlib stream context when compression was requested."""

    def __init__(self, ws: web.WebSocketResponse, compress: bool) -> None:
        self.ws = ws
        self._zlib = zlib.compressobj() if compress else None
        self.closed_by_server = False

    async def close(self, code: int, message: str) -> None:
        self.closed_by_server = True
        await self.ws.close(code=code, message=message.encode())

    async def send(self, frame: JSON) -> None:
        text = json.dumps(frame)
        if self._zlib is None:
            await self.ws.send_str(text)
        else:
            await self.ws.send_bytes(self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH))


@dataclass(eq=False)
class Session:
    """A bot's gateway session: what it identified with and every event sent (for RESUME)."""

    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    connection: _Connection | None = None
    buffer: deque[JSON] = field(default_factory=deque)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    resumes: int = 0
    ready: bool = False  # READY and every GUILD_CREATE have been sent

    @property
    def attached(self) -> bool:
        """A live websocket carries this session (events are sent, not only buffered)."""
        return self.connection is not None and not self.connection.ws.closed

    @property
    def connected(self) -> bool:
        """Attached and past its READY/GUILD_CREATEs: the bot is online."""
        return self.ready and self.attached

    def has(self, intent: int) -> bool:
        return bool(self.intents & intent)

    def sees_guild(self, guild_id: int | None) -> bool:
        if self.shard is None:
            return True
        shard_id, count = self.shard
        if guild_id is None:  # DMs go to shard 0
            return shard_id == 0
        return (guild_id >> 22) % count == shard_id


def _valid_shard(shard: Any) -> bool:
    """``[shard_id, shard_count]`` with ``0 <= shard_id < shard_count``."""
    return (
        isinstance(shard, list)
        and len(shard) == 2
        and all(isinstance(n, int) for n in shard)
        and 0 <= shard[0] < shard[1]
    )


class Gateway:
    def __init__(
        self, world: World, recorder: Recorder, config: GatewayConfig, token: str, url: Callable[[], str]
    ) -> None:
        self.world = world
        self.recorder = recorder
        self.config = config
        self.token = token
        self._url = url
        self.sessions: dict[str, Session] = {}
        self.identify_payloads: list[JSON] = []  # each IDENTIFY ``d`` with the token removed
        self._connections: set[_Connection] = set()

    @property
    def connected_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.connected]

    def sessions_on(self, shard_id: int, shard_count: int) -> list[Session]:
        """The connected sessions that identified as ``shard_id`` of ``shard_count``."""
        return [s for s in self.connected_sessions if s.shard == [shard_id, shard_count]]

    # ---- websocket handler ----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compress = self.config.compression and request.query.get("compress") == "zlib-stream"
        connection = _Connection(ws, compress)
        self._connections.add(connection)
        session: Session | None = None
        try:
            await self._send_raw(
                connection, {"op": 10, "d": {"heartbeat_interval": self.config.heartbeat_interval_ms}}
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self._record_received(frame)
                session = await self._on_frame(connection, session, frame) or session
        finally:
            self._connections.discard(connection)
            if session is not None and session.connection is connection:
                session.connection = None
                if ws.close_code in (1000, 1001) and not connection.closed_by_server:  # the bot logged out
                    self.sessions.pop(session.id, None)
            self.recorder.notifier.notify()
        return ws

    async def _on_frame(
        self, connection: _Connection, session: Session | None, frame: JSON
    ) -> Session | None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            await self._send_raw(connection, {"op": 11})
        elif op == 2:
            return await self._identify(connection, session, data or {})
        elif op == 6:
            return await self._resume(connection, data or {})
        elif op == 8 and session is not None:
            await self._member_chunk(session, data or {})
        return None

    async def _identify(self, connection: _Connection, session: Session | None, data: JSON) -> Session | None:
        if session is not None:
            await connection.close(4005, "Already authenticated.")
            return None
        if data.get("token") != self.token:
            await connection.close(AUTHENTICATION_FAILED, "Authentication failed.")
            return None
        shard = data.get("shard")
        if shard is not None and not _valid_shard(shard):
            await connection.close(INVALID_SHARD, "Invalid shard.")
            return None
        intents = int(data.get("intents", 0))
        if not self._intents_allowed(intents):
            await connection.close(DISALLOWED_INTENTS, "Disallowed intent(s).")
            return None
        self.identify_payloads.append({k: v for k, v in data.items() if k != "token"})
        # Discord allows several sessions on one shard: each gets that shard's events.
        session = Session(id=secrets.token_hex(16), intents=intents, shard=shard)
        session.buffer = deque(maxlen=self.config.replay_buffer)
        session.connection = connection
        self.sessions[session.id] = session
        guilds = [guild for guild in self.world.guilds.values() if session.sees_guild(guild.id)]
        ready = payloads.ready(
            self.world,
            session.id,
            self._url(),
            session.shard,
            self.config.message_content_granted,
            [guild.id for guild in guilds],
        )
        await self._send(session, "READY", ready)
        for guild in guilds:
            await self._send(session, "GUILD_CREATE", payloads.guild_create(guild, self.world))
        session.ready = True
        self.recorder.notifier.notify()
        return session

    def _intents_allowed(self, intents: int) -> bool:
        cfg = self.config
        refused = (
            (intents & MESSAGE_CONTENT and not cfg.message_content_granted)
            or (intents & GUILD_MEMBERS and not cfg.members_granted)
            or (intents & GUILD_PRESENCES and not cfg.presences_granted)
        )
        return not refused

    async def _resume(self, connection: _Connection, data: JSON) -> Session | None:
        if data.get("token") != self.token:
            await connection.close(AUTHENTICATION_FAILED, "Authentication failed.")
            return None
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or session.attached:
            await self._send_raw(connection, {"op": 9, "d": False})
            return None
        session.connection = connection
        session.resumes += 1
        last_seen = int(data.get("seq") or 0)
        async with session.lock:
            for frame in list(session.buffer):
                if frame["s"] > last_seen:
                    await self._send_raw(connection, frame)
        await self._send(session, "RESUMED", {"_trace": ["glimpse-emulator"]})
        return session

    async def _member_chunk(self, session: Session, data: JSON) -> None:
        guild = self.world.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        chunk = {
            "guild_id": str(guild.id),
            "members": [payloads.member(m) for m in guild.members.values()],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "nonce": data.get("nonce"),
        }
        await self._send(session, "GUILD_MEMBERS_CHUNK", chunk)

    # ---- sending --------------------------------------------------------------------------

    async def _send_raw(self, connection: _Connection, frame: JSON) -> None:
        frame = {"op": frame["op"], "d": frame.get("d"), "s": frame.get("s"), "t": frame.get("t")}
        self.recorder.gateway_sent.append(frame)
        if not connection.ws.closed:
            try:
                await connection.send(frame)
            except ConnectionError:
                _log.debug("gateway connection went away while sending %s", frame.get("t") or frame["op"])

    async def _send(self, session: Session, event: str, data: JSON) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.buffer.append(frame)
            if session.attached:
                assert session.connection is not None
                await self._send_raw(session.connection, frame)

    async def dispatch(
        self,
        event: str,
        data: JSON,
        *,
        guild_id: int | None = None,
        intent: int = 0,
        content_exempt: bool = True,
    ) -> None:
        """Send ``event`` to every session that should see it (also buffered for detached ones).

        ``intent`` is the intent a session needs to receive it; when ``content_exempt`` is false, a
        session without the Message Content intent gets the message with content, attachments, embeds
        and components emptied, its forwarded snapshots' too, as Discord does.
        """
        for session in list(self.sessions.values()):
            if (intent and not session.has(intent)) or not session.sees_guild(guild_id):
                continue
            body = data
            if not content_exempt and not session.has(MESSAGE_CONTENT):
                body = payloads.without_content(data)
            await self._send(session, event, body)
        self.recorder.notifier.notify()

    def _record_received(self, frame: JSON) -> None:
        data = frame.get("d")
        if isinstance(data, dict) and "token" in data:
            frame = {**frame, "d": {**data, "token": "<redacted>"}}
        self.recorder.add(self.recorder.gateway_received, frame)

    # ---- test controls --------------------------------------------------------------------

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every connected session; discord.py then resumes."""
        for session in self.connected_sessions:
            assert session.connection is not None
            await self._send_raw(session.connection, {"op": 7, "d": None})

    async def invalidate_sessions(self, resumable: bool = False) -> None:
        """Send op 9 INVALID SESSION to every connected session."""
        for session in self.connected_sessions:
            assert session.connection is not None
            await self._send_raw(session.connection, {"op": 9, "d": resumable})
            if not resumable:
                self.sessions.pop(session.id, None)

    async def close_connections(self, code: int = 4000, message: str = "") -> None:
        """Close every websocket with ``code`` (4000 lets discord.py resume; 4004/4014 are fatal)."""
        for connection in list(self._connections):
            await connection.close(code, message)

    async def shutdown(self) -> None:
        await self.close_connections(1001, "Emulator shutting down.")
