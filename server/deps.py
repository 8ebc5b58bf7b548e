"""FastAPI dependencies: settings, the server's shared state, API-key auth."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from server.engine import Engine
from server.jobs import JobStore
from server.metrics import Metrics
from server.portraits import PortraitStore
from server.session import SessionManager
from server.settings import Settings
from talker.persona import PersonaMaker, PersonaStore


@dataclass
class ServerState:
    """What the lifespan builds once and every request shares."""

    engine: Engine
    manager: SessionManager
    portraits: PortraitStore
    jobs: JobStore
    metrics: Metrics
    started_at: float
    personas: PersonaStore
    persona_maker: PersonaMaker


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_state(request: Request) -> ServerState:
    state: ServerState | None = getattr(request.app.state, "talker", None)
    if state is None:  # pragma: no cover - only before the lifespan ran
        raise HTTPException(503, "the server is still starting")
    return state


def get_manager(state: ServerState = Depends(get_state)) -> SessionManager:
    return state.manager


def get_jobs(state: ServerState = Depends(get_state)) -> JobStore:
    return state.jobs


def get_portraits(state: ServerState = Depends(get_state)) -> PortraitStore:
    return state.portraits


def get_personas(state: ServerState = Depends(get_state)) -> PersonaStore:
    return state.personas


def get_persona_maker(state: ServerState = Depends(get_state)) -> PersonaMaker:
    return state.persona_maker


def get_engine(state: ServerState = Depends(get_state)) -> Engine:
    return state.engine


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key")
_bearer = HTTPBearer(auto_error=False, description="the server's API key as a bearer token")


async def require_api_key(
    settings: Settings = Depends(get_settings),
    key: str | None = Depends(_api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> None:
    """When ``TALKER_API_KEY`` is set, every API call must carry it (X-API-Key or Bearer)."""
    expected = settings.api_key
    if not expected:
        return
    given = key or (bearer.credentials if bearer else None)
    if not given:
        raise HTTPException(
            401,
            "this server needs an API key: send it as X-API-Key or Authorization: Bearer",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(403, "the API key is not valid")
