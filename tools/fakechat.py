"""A local OpenAI-compatible chat endpoint that replays scripted replies (tests, benchmarks, demos).

It speaks the real protocol — ``POST /v1/chat/completions`` answered with ``text/event-stream``,
HTTP/1.1 chunked, one ``data: {chat.completion.chunk}`` event per token, then ``data: [DONE]`` — but
has no model: the reply is a fixed text or a function of the request. Tokens can be delayed to imitate
a slow model, and the time each one was sent is recorded (``sent``), on the same clock as
``time.perf_counter`` in the calling process.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TOKEN_RE = re.compile(r"\s*\S+")


def tokens(text: str) -> list[str]:
    """Split a reply into word-sized tokens, each keeping its leading whitespace."""
    return _TOKEN_RE.findall(text)


def chunk_event(content: str | None, finish: str | None = None, role: str | None = None, model: str = "fake") -> str:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    obj = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return "data: " + json.dumps(obj) + "\n\n"


class FakeChatServer:
    """``with FakeChatServer("Hello there. How are you?") as srv: ChatSettings(base_url=srv.base_url)``.

    reply: the text, or a function of the request body. token_delay_s / first_token_delay_s: pauses before
    each token / before the first. status + error: answer with that HTTP status and an OpenAI-style error.
    raw_events: send these SSE lines verbatim instead of a reply (malformed streams).
    """

    def __init__(
        self,
        reply: str | Callable[[dict[str, Any]], str] = "Hello there. How can I help you today?",
        token_delay_s: float = 0.0,
        first_token_delay_s: float = 0.0,
        status: int = 200,
        error: str = "something went wrong",
        raw_events: list[str] | None = None,
        send_done: bool = True,
    ) -> None:
        self.reply = reply
        self.token_delay_s = token_delay_s
        self.first_token_delay_s = first_token_delay_s
        self.status = status
        self.error = error
        self.raw_events = raw_events
        self.send_done = send_done
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.sent: list[tuple[float, str]] = []  # (perf_counter, token) per content token sent
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake chat server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeChatServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                owner.requests.append(body)
                owner.headers.append({k: v for k, v in self.headers.items()})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if owner.status != 200:
                    self._json(owner.status, {"error": {"message": owner.error, "type": "fake_error"}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if owner.raw_events is not None:
                        for line in owner.raw_events:
                            self._chunk(line)
                    else:
                        self._reply(body)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client hung up

            def _reply(self, body: dict[str, Any]) -> None:
                text = owner.reply(body) if callable(owner.reply) else owner.reply
                model = str(body.get("model", "fake"))
                self._chunk(chunk_event(None, role="assistant", model=model))
                for i, tok in enumerate(tokens(text)):
                    delay = owner.first_token_delay_s if i == 0 else owner.token_delay_s
                    if delay > 0:
                        time.sleep(delay)
                    self._chunk(chunk_event(tok, model=model))
                    owner.sent.append((time.perf_counter(), tok))
                self._chunk(chunk_event(None, finish="stop", model=model))
                if owner.send_done:
                    self._chunk("data: [DONE]\n\n")

            def _chunk(self, text: str) -> None:
                data = text.encode("utf-8")
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-chat", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
