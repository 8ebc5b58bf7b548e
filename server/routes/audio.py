"""``/sessions/{id}/audio``: a WebSocket that streams PCM into a live session (docs/server.md).

The avatar plays the audio on the session's WebRTC tracks and moves its mouth to it. Protocol: declare
the format (query ``?sample_rate=16000&channels=1&encoding=s16le`` or a first JSON message with those
fields), wait for ``{"type": "ready"}``, then send binary messages of PCM. JSON control messages:
``{"type": "start", "interrupt": true}`` begins a new utterance (by default cutting off what plays),
``{"type": "end"}`` ends one (its last part frame plays too), ``{"type": "interrupt"}`` stops what
plays. Refusals close the socket with a code and a reason that names the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from server.audio_in import AudioFormatError, PcmFormat
from server.deps import ServerState, principal_for
from server.session import Session
from server.session_errors import AudioBusy, SessionClosed, SessionError, SessionNotFound, SessionRefused

router = APIRouter(prefix="/sessions", tags=["sessions"])
log = logging.getLogger("talker.server")

FORMAT_WAIT_S = 10.0

# close codes (4000-4999 are the application's; they mirror the HTTP statuses of the other routes)
BAD_DATA = 1003  # the declared format or the bytes cannot be played
TOO_BIG = 1009
BAD_MESSAGE = 4400
NO_KEY, BAD_KEY, NOT_FOUND, TIMEOUT, BUSY, REFUSED, SLOW_DOWN = 4401, 4403, 4404, 4408, 4409, 4422, 4429
GONE = 1001


class _Refuse(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    raw = text.encode("utf-8")
    return text if len(raw) <= 123 else raw[:120].decode("utf-8", "ignore") + "..."


_HTTP_TO_CLOSE = {401: NO_KEY, 403: BAD_KEY, 429: SLOW_DOWN}
_SESSION_TO_CLOSE: dict[type[SessionError], int] = {
    SessionNotFound: NOT_FOUND,
    SessionClosed: BUSY,
    AudioBusy: BUSY,
    SessionRefused: REFUSED,
}


async def _receive_json(ws: WebSocket, timeout: float) -> dict[str, Any]:
    try:
        msg = await asyncio.wait_for(ws.receive(), timeout)
    except TimeoutError:
        raise _Refuse(TIMEOUT, f"no audio format declared within {timeout:g} s") from None
    if msg["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(msg.get("code", 1000))
    return _parse_json(msg.get("text"))


def _parse_json(text: str | None) -> dict[str, Any]:
    if text is None:
        raise _Refuse(BAD_MESSAGE, "expected a JSON message here (declare the format before sending audio)")
    try:
        obj = json.loads(text)
    except ValueError:
        raise _Refuse(BAD_MESSAGE, "a text message must be a JSON object") from None
    if not isinstance(obj, dict):
        raise _Refuse(BAD_MESSAGE, "a text message must be a JSON object")
    return obj


class _Stream:
    """One socket feeding one session: utterance bookkeeping and backpressure."""

    def __init__(self, ws: WebSocket, session: Session, fmt: PcmFormat, state: ServerState) -> None:
        self.ws = ws
        self.session = session
        self.fmt = fmt
        self.settings = state.manager.settings
        self.utterance: tuple[int, int] | None = None  # (id, epoch)

    def _current(self) -> tuple[int, int]:
        """The utterance new audio belongs to; after an interrupt from anywhere, a new one."""
        u = self.utterance
        if u is None or u[1] != self.session.timeline.epoch:
            u = self.utterance = self.session.start_utterance(interrupt=False)
        return u

    async def audio(self, data: bytes) -> None:
        if len(data) > self.settings.audio_in_max_message_bytes:
            raise _Refuse(TOO_BIG, f"an audio message may be at most {self.settings.audio_in_max_message_bytes} bytes")
        try:
            samples = self.fmt.decode(data)
        except AudioFormatError as e:
            raise _Refuse(BAD_DATA, str(e)) from None
        audio_in = self.session.audio_in
        assert audio_in is not None
        # backpressure: a client sending faster than real time waits here (and TCP holds the rest)
        while audio_in.queued_s > self.settings.audio_in_max_ahead_s and self.session.state != "closed":
            await asyncio.sleep(0.02)
        uid, epoch = self._current()
        self.session.hear(samples, self.fmt.sample_rate, uid, epoch)

    async def control(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "start":
            interrupt = msg.get("interrupt", True)
            if not isinstance(interrupt, bool):
                raise _Refuse(BAD_MESSAGE, "start: interrupt must be true or false")
            if self.utterance is not None and not interrupt:
                self.session.end_utterance(*self.utterance)
            self.utterance = self.session.start_utterance(interrupt)
            await self.ws.send_json({"type": "started", "utterance_id": self.utterance[0]})
        elif kind == "end":
            if self.utterance is not None:
                self.session.end_utterance(*self.utterance)
                self.utterance = None
        elif kind == "interrupt":
            done = self.session.interrupt()
            self.utterance = None
            await self.ws.send_json(
                {"type": "interrupted", "interrupted": done.stopped, "idle_from_frame": done.idle_from_frame}
            )
        else:
            raise _Refuse(BAD_MESSAGE, f"unknown message type {kind!r}; send start, end or interrupt")


async def _watch_close(ws: WebSocket, session: Session) -> None:
    while session.state != "closed":
        await asyncio.sleep(0.25)
    with contextlib.suppress(RuntimeError, OSError):
        await ws.close(GONE, _reason(f"the session closed ({session.close_reason})"))


@router.websocket("/{session_id}/audio")
async def session_audio(ws: WebSocket, session_id: str) -> None:
    """Stream PCM (s16le) into a live session; the avatar says it, lip-synced (module docstring)."""
    state: ServerState = ws.app.state.talker
    await ws.accept()
    session: Session | None = None
    watcher: asyncio.Task[None] | None = None
    try:
        first: dict[str, Any] | None = None
        header = ws.headers.get("x-api-key")
        auth = ws.headers.get("authorization", "")
        key = header or (auth[7:].strip() if auth.lower().startswith("bearer ") else None)
        if key is None and state.keys.enabled:  # (a browser cannot set headers: the first message may carry it)
            first = await _receive_json(ws, FORMAT_WAIT_S)
            key = first.get("api_key") if isinstance(first.get("api_key"), str) else None
        addr = ws.client.host if ws.client else "unknown"
        try:
            who = principal_for(state, addr, key)
        except HTTPException as e:
            raise _Refuse(_HTTP_TO_CLOSE.get(e.status_code, BAD_KEY), str(e.detail)) from None
        session = state.manager.get(session_id, who)
        query = dict(ws.query_params)
        if "sample_rate" not in query:
            first = first if first is not None and "sample_rate" in first else await _receive_json(ws, FORMAT_WAIT_S)
            query = {k: v for k, v in first.items() if k in ("sample_rate", "channels", "encoding")}
        try:
            fmt = PcmFormat.parse(query)
        except AudioFormatError as e:
            raise _Refuse(BAD_DATA, str(e)) from None
        session.open_audio()
        try:
            watcher = asyncio.get_running_loop().create_task(_watch_close(ws, session))
            await ws.send_json(
                {
                    "type": "ready",
                    "session_id": session.id,
                    "sample_rate": fmt.sample_rate,
                    "channels": fmt.channels,
                    "encoding": fmt.encoding,
                    "buffer_ms": state.manager.settings.audio_in_buffer_ms,
                }
            )
            stream = _Stream(ws, session, fmt, state)
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("bytes") is not None:
                    await stream.audio(msg["bytes"])
                else:
                    await stream.control(_parse_json(msg.get("text")))
            if stream.utterance is not None:  # the client hung up: what it sent still plays
                session.end_utterance(*stream.utterance)
        finally:
            session.close_audio()
    except _Refuse as e:
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close(e.code, _reason(e.reason))
    except SessionError as e:
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close(_SESSION_TO_CLOSE.get(type(e), BUSY), _reason(e.message))
    except WebSocketDisconnect:
        pass
    finally:
        if watcher is not None:
            watcher.cancel()
