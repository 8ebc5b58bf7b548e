"""Where the server may send requests: chat endpoints the deployer listed, with the keys bound to them.

A persona names a chat endpoint by its base URL. The server reaches only its own default endpoint
(``chat_base_url``) and the ones in ``chat_endpoints``; each key is read from the environment variable
the deployer bound to that URL and is sent to that URL only. A persona cannot name a variable, so no
client can make the server send one of its secrets elsewhere, and no client can make the server open a
connection to an address the deployer did not list (metadata services, ports on the private network).
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

from server.settings import Settings
from talker.chat import DEFAULT_BASE_URL, ChatSettings
from talker.persona import Persona


class EndpointRefused(ValueError):
    """A chat endpoint this server is not configured to reach."""


def normalize_url(url: str) -> str:
    """A base URL in one spelling: lower-case scheme and host, default port dropped, no trailing slash.

    Raises ``EndpointRefused`` for anything but a plain http(s) URL (no credentials, query or fragment)."""
    raw = url.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as e:
        raise EndpointRefused(f"chat_base_url {raw!r} is not a valid URL") from e
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRefused(f"chat_base_url {raw!r} is not an http(s) URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise EndpointRefused(f"chat_base_url {raw!r} may not carry credentials, a query or a fragment")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), "", ""))


def allowed_endpoints(settings: Settings) -> dict[str, str | None]:
    """Normalized base URL -> the NAME of the variable holding its key (None: no key is sent)."""
    out: dict[str, str | None] = {}
    for url, env in settings.chat_endpoints.items():
        out[normalize_url(url)] = env or None
    if settings.chat_base_url:
        out[normalize_url(settings.chat_base_url)] = settings.chat_api_key_env or None
    return out


def check_persona_endpoint(base_url: str | None, api_key_env: str | None, settings: Settings) -> str | None:
    """Validate a chat endpoint a client asks for; returns its normalized URL (None: the server's default).

    Raises ``EndpointRefused`` for a URL the deployer did not list, and for a key variable named by the
    client (keys are bound to URLs by the deployer)."""
    if api_key_env:
        raise EndpointRefused(
            "chat_api_key_env cannot be chosen by a client: the key of each chat endpoint is bound to it by the "
            "server's operator (TALKER_CHAT_ENDPOINTS)"
        )
    if not base_url:
        return None
    url = normalize_url(base_url)
    if url not in allowed_endpoints(settings):
        raise EndpointRefused(
            f"chat endpoint {url} is not allowed on this server; its operator lists the endpoints personas may use "
            "(TALKER_CHAT_BASE_URL, TALKER_CHAT_ENDPOINTS)"
        )
    return url


def chat_settings_for(persona: Persona | None, settings: Settings) -> ChatSettings | None:
    """The endpoint that answers a session's chat requests, or None (they are repeated as said).

    A persona's own endpoint when it names one (a base URL other than the library's default) and the
    server allows it, with the key the deployer bound to that URL; else the server's default endpoint
    with the persona's system prompt. Raises ``EndpointRefused`` for a persona naming an endpoint the
    server does not allow (one made with the CLI, say)."""
    if persona is not None and persona.chat.base_url != DEFAULT_BASE_URL:
        url = normalize_url(persona.chat.base_url)
        allowed = allowed_endpoints(settings)
        if url not in allowed:
            raise EndpointRefused(
                f"persona {persona.id}'s chat endpoint is not allowed on this server (TALKER_CHAT_ENDPOINTS)"
            )
        return replace(persona.chat, base_url=url, api_key_env=allowed[url])
    if settings.chat_base_url:
        return ChatSettings(
            base_url=normalize_url(settings.chat_base_url),
            model=settings.chat_model,
            api_key_env=settings.chat_api_key_env or None,
            system_prompt=persona.chat.system_prompt if persona is not None else "",
        )
    return None
