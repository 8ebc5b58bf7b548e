"""FastAPI dependencies: settings, the server's shared state, API keys -> the calling tenant."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from server.avatars import AvatarStore
from server.engine import Engine
from server.jobs import JobStore
from server.manager import SessionManager
from server.metrics import Metrics
from server.portraits import PortraitStore
from server.settings import Settings
from server.tenancy import LOCAL_ADMIN, KeyRing, OwnerStore, Principal, RateLimiter
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
    keys: KeyRing
    owners: OwnerStore
    session_rate: RateLimiter
    auth_failures: RateLimiter
    upload_pool: ThreadPoolExecutor = field(default_factory=lambda: upload_pool(1))
    avatars: AvatarStore | None = None


def _lower_priority() -> None:
    """Upload threads run at a lower CPU priority than the threads that pace live sessions."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (OSError, AttributeError):  # not Linux, or not allowed: same priority as the rest
        pass


def upload_pool(workers: int) -> ThreadPoolExecutor:
    """The threads that decode and rig uploaded pictures: ``workers`` at a time, at a lower priority."""
    return ThreadPoolExecutor(workers, thread_name_prefix="talker-upload", initializer=_lower_priority)


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


def get_owners(state: ServerState = Depends(get_state)) -> OwnerStore:
    return state.owners


def client_address(request: Request) -> str:
    """The peer's address (a proxy in front must pass the real one to uvicorn: --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key")
_bearer = HTTPBearer(auto_error=False, description="the server's API key as a bearer token")


async def require_api_key(
    request: Request,
    state: ServerState = Depends(get_state),
    key: str | None = Depends(_api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    """The calling tenant. With keys configured every API call must carry one (X-API-Key or Bearer);
    without, every caller is the default tenant's admin. A client address with too many failed keys in
    a minute gets 429 until the minute has passed."""
    return principal_for(state, client_address(request), key or (bearer.credentials if bearer else None))


def principal_for(state: ServerState, addr: str, given: str | None) -> Principal:
    """The tenant of an API key given from ``addr`` (HTTP requests and WebSockets alike); raises
    ``HTTPException`` 401 (none given), 403 (not valid) or 429 (too many wrong keys from ``addr``)."""
    if not state.keys.enabled:
        return LOCAL_ADMIN
    if state.auth_failures.blocked(addr):
        raise HTTPException(
            429,
            "too many requests with a wrong API key from this address; try again later",
            headers={"Retry-After": str(state.auth_failures.retry_after(addr))},
        )
    if not given:
        raise HTTPException(
            401,
            "this server needs an API key: send it as X-API-Key or Authorization: Bearer",
            headers={"WWW-Authenticate": "Bearer"},
        )
    who = state.keys.lookup(given)
    if who is None:
        state.auth_failures.allow(addr)
        raise HTTPException(403, "the API key is not valid")
    return who


def require_admin(who: Principal = Depends(require_api_key)) -> Principal:
    if not who.admin:
        raise HTTPException(403, "this needs an operator's (admin) API key")
    return who


def check_quota(who: Principal, settings: Settings, jobs: JobStore, owners: OwnerStore, new_bytes: int = 0) -> None:
    """429 when the tenant has too many active jobs, 507 when its files would pass its storage quota."""
    if who.admin:
        return
    if jobs.active_count(who.tenant) >= settings.tenant_max_jobs:
        raise HTTPException(
            429,
            f"you have {settings.tenant_max_jobs} render jobs queued or running (your limit); wait for one to finish",
            headers={"Retry-After": "10"},
        )
    used = jobs.bytes_of(who.tenant) + owners.bytes_of(who.tenant)
    if used + new_bytes > settings.tenant_max_storage_bytes:
        raise HTTPException(
            507,
            f"your files take {used} bytes of your {settings.tenant_max_storage_bytes}-byte quota; "
            "delete finished jobs, portraits, personas or video avatars first",
        )
