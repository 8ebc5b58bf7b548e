"""Chat with a persona through any OpenAI-compatible endpoint, speaking each sentence as soon as it ends.

``ChatClient.stream`` POSTs ``{base_url}/chat/completions`` with ``"stream": true`` and yields the text
deltas of the server-sent events (``data: {...}`` lines, ended by ``data: [DONE]``). ``SentenceSplitter``
turns deltas into complete sentences the moment their final punctuation is followed by whitespace (or a
line break), so speech synthesis starts long before the reply is complete. ``speak_reply`` chains both
into ``SpeechChunk``s (``talker.sentences``, whose names are importable from here).

Only the standard library is used for HTTP (``urllib``): proxies and HTTPS work as usual, nothing is added
to the dependencies. Works with OpenAI, llama.cpp's server, Ollama (``/v1``), vLLM, LM Studio...
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from talker.sentences import SentenceSplitter, iter_sentences, speak_reply, speakable

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible endpoint
DEFAULT_MODEL = "llama3.2"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"

__all__ = [
    "DEFAULT_BASE_URL", "ChatClient", "ChatError", "ChatSettings", "Message", "SSEEvent", "SentenceSplitter",
    "abort_response", "deltas_from_events", "iter_sentences", "parse_sse", "speak_reply", "speakable",
]  # fmt: skip


class ChatError(RuntimeError):
    """The chat endpoint failed: unreachable, an error status, an error event, or a malformed stream.

    ``public``: the same in words safe to show a remote client (no URL, no text the endpoint sent)."""

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or "the chat endpoint failed"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are errors: following one would send the key and the messages to another address."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class ChatSettings:
    """Where and how a persona chats.

    base_url: the API root (``.../v1``); model: the model name the server knows; api_key_env: the NAME of
    the environment variable holding the key (the key itself is never stored); system_prompt: the persona's
    instructions; timeout_s: longest wait for any read (a slow token stream is fine).
    """

    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    api_key_env: str | None = DEFAULT_API_KEY_ENV
    system_prompt: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "model": self.model,
            "api_key_env": self.api_key_env,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChatSettings:
        known = {k: d[k] for k in cls().to_dict() if k in d}
        return cls(**known)


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str


# --- server-sent events --------------------------------------------------------------------------------


@dataclass
class SSEEvent:
    """One server-sent event: its ``data`` lines joined by newlines, and its ``event`` name if any."""

    data: str
    event: str = "message"
    fields: dict[str, str] = field(default_factory=dict)


def parse_sse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Server-sent events from text lines (as the HTML spec reads them).

    ``data:`` lines accumulate until a blank line dispatches the event; ``:`` lines are comments; unknown
    fields are kept in ``fields``; a line without a colon is a field with an empty value. A final event
    without its blank line is still dispatched.
    """
    data: list[str] = []
    event = "message"
    fields: dict[str, str] = {}
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SSEEvent("\n".join(data), event, fields)
            data, event, fields = [], "message", {}
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value or "message"
        else:
            fields[name] = value
    if data:
        yield SSEEvent("\n".join(data), event, fields)


def deltas_from_events(events: Iterable[SSEEvent], source: str = "the chat endpoint") -> Iterator[str]:
    """Text deltas of OpenAI chat-completion chunks, up to ``[DONE]``.

    Raises ``ChatError`` for data that is not JSON, for an ``error`` object in the stream, and for a
    stream that ends with neither ``[DONE]`` nor a ``finish_reason``.
    """
    finished = False
    for ev in events:
        payload = ev.data.strip()
        if payload == "[DONE]":
            return
        try:
            obj = json.loads(payload)
        except ValueError as e:
            raise ChatError(
                f"{source} sent a malformed event (not JSON): {payload[:120]!r}",
                "the chat endpoint sent a malformed stream",
            ) from e
        if not isinstance(obj, dict):
            raise ChatError(
                f"{source} sent a malformed event (not an object): {payload[:120]!r}",
                "the chat endpoint sent a malformed stream",
            )
        if obj.get("error"):
            err = obj["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise ChatError(f"{source} reported an error mid-stream: {msg}", "the chat endpoint reported an error")
        for choice in obj.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if text:
                yield str(text)
            if choice.get("finish_reason"):
                finished = True
    if not finished:
        raise ChatError(
            f"{source} closed the stream before the reply was complete (no [DONE])",
            "the chat endpoint closed the stream before the reply was complete",
        )


# --- the client ---------------------------------------------------------------------------------------


class ChatClient:
    """Streaming chat completions from an OpenAI-compatible endpoint."""

    def __init__(self, settings: ChatSettings | None = None) -> None:
        self.settings = settings or ChatSettings()

    @property
    def url(self) -> str:
        return self.settings.base_url.rstrip("/") + "/chat/completions"

    def messages(self, user: str, history: Sequence[Message] = ()) -> list[Message]:
        """System prompt (when set), then the history, then the user's message."""
        out = [Message("system", self.settings.system_prompt)] if self.settings.system_prompt else []
        return out + list(history) + [Message("user", user)]

    def _request(self, messages: Sequence[Message]) -> urllib.request.Request:
        s = self.settings
        body: dict[str, Any] = {
            "model": s.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
        }
        if s.temperature is not None:
            body["temperature"] = s.temperature
        if s.max_tokens is not None:
            body["max_tokens"] = s.max_tokens
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = os.environ.get(s.api_key_env, "") if s.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return urllib.request.Request(self.url, json.dumps(body).encode("utf-8"), headers, method="POST")

    def stream(
        self, messages: Sequence[Message] | str, on_response: Callable[[Any], None] | None = None
    ) -> Generator[str, None, None]:
        """Yield the reply's text deltas as they arrive. ``messages`` may be just the user's text.

        Raises ``ChatError`` naming the URL on connection failures, non-2xx answers (with the server's
        error message), error events and malformed streams. Closing the iterator closes the connection.
        ``on_response`` gets the open HTTP response first, so another thread can abort a blocked read
        (``abort_response``).
        """
        msgs = self.messages(messages) if isinstance(messages, str) else list(messages)
        if not msgs:
            raise ValueError("no messages to send")
        try:
            resp = _OPENER.open(self._request(msgs), timeout=self.settings.timeout_s)
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:
                raise ChatError(
                    f"chat endpoint {self.url} answered a redirect ({e.code}); redirects are not followed",
                    f"the chat endpoint answered a redirect (HTTP {e.code})",
                ) from e
            raise ChatError(
                f"chat endpoint {self.url} answered {e.code}: {_error_message(e)}",
                f"the chat endpoint answered HTTP {e.code}",
            ) from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ChatError(
                f"cannot reach the chat endpoint {self.url}: {reason}", "the chat endpoint could not be reached"
            ) from e
        if on_response is not None:
            on_response(resp)
        try:
            lines = (raw.decode("utf-8", errors="replace") for raw in resp)
            try:
                yield from deltas_from_events(parse_sse(lines), f"chat endpoint {self.url}")
            except (OSError, TimeoutError) as e:
                raise ChatError(
                    f"the stream from {self.url} broke off: {e}", "the stream from the chat endpoint broke off"
                ) from e
        finally:
            resp.close()

    def complete(self, messages: Sequence[Message] | str) -> str:
        """The whole reply as one string (still streamed underneath)."""
        return "".join(self.stream(messages))


def abort_response(resp: Any) -> None:
    """Shut down the socket under an open streaming response (from another thread): a read blocked on
    a slow token returns at once, and the endpoint sees the client hang up. Best effort: a response
    whose socket is already gone is left alone."""
    raw = getattr(getattr(resp, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _error_message(e: urllib.error.HTTPError) -> str:
    try:
        body = e.read().decode("utf-8", errors="replace")
    except OSError:
        return str(e.reason)
    try:
        obj = json.loads(body)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        msg = err.get("message") if isinstance(err, dict) else None
        if msg:
            return str(msg)
    except ValueError:
        pass
    return body.strip()[:300] or str(e.reason)
