"""ASGI middleware of the app: request bodies limited by path prefix before they are read (``BodyLimit``),
and state-changing browser requests from other sites refused (``SameOrigin``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

_UPLOAD_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and form fields around an upload

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for request bodies over the upload limit, before they are read in full."""

    def __init__(self, app: Any, upload_limit: int, limits: dict[str, int] | None = None) -> None:
        """``upload_limit``: bytes of one upload; ``limits``: path prefix -> another limit for its routes."""
        self.app = app
        self.upload_limit = upload_limit
        self.limits = dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        upload = next((n for p, n in self.limits.items() if path.startswith(p)), self.upload_limit)
        limit = upload + _UPLOAD_OVERHEAD_BYTES
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, upload)
            return
        seen = 0
        started = False
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if exceeded:  # the form parser turned the cut-off body into its own 400: answer 413 instead
                if msg["type"] == "http.response.start" and not started:
                    started = True
                    await _too_large(send, upload)
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, upload)


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail":"the request body is too large: uploads are limited to {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SameOrigin:
    """ASGI middleware: 403 for a state-changing request (or a WebSocket) a browser sends from another web origin.

    A page on any site can make a visitor's browser POST a form to a server on their machine or network;
    the browser names that page's origin in ``Origin`` (or ``Sec-Fetch-Site``), which the page cannot forge.
    Requests from the server's own page, from ``allowed`` origins and from non-browser clients pass."""

    _SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: Any, allowed: list[str]) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self._foreign(scope):
            # a page on another site may not open a socket into a session (the handshake gets 403)
            await send({"type": "websocket.close", "code": 4403, "reason": "cross-site socket refused"})
            return
        if scope["type"] == "http" and scope["method"] not in self._SAFE and self._foreign(scope):
            body = b'{"detail":"cross-site request refused: this origin may not call the API (TALKER_ALLOWED_ORIGINS)"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _foreign(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/").lower()
        if origin and origin != "null":
            host = headers.get(b"host", b"").decode("latin-1").lower()
            same = origin.split("://", 1)[-1] == host
            return not same and origin not in self.allowed
        if origin == "null":
            return True
        return headers.get(b"sec-fetch-site", b"") == b"cross-site"
