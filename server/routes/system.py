"""Health, metrics and the browser client's configuration."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from server.deps import ServerState, get_settings, get_state, require_admin, require_api_key
from server.metrics import gauge
from server.schemas import ClientConfig, Health, Problem
from server.settings import Settings

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health)
async def health(state: ServerState = Depends(get_state), settings: Settings = Depends(get_settings)) -> Health:
    """Liveness and load (no API key needed)."""
    counts = state.jobs.counts()
    return Health(
        status="ok",
        models_loaded=bool(state.engine.load_seconds) or not settings.preload_models,
        sessions=len(state.manager.sessions),
        max_sessions=settings.max_sessions,
        jobs_queued=counts["queued"],
        jobs_running=counts["running"],
        uptime_s=time.monotonic() - state.started_at,
        accepting_sessions=state.manager.full() is None,
        frames_late_pct=state.manager.load.late_pct(),
        jobs_on="ray" if settings.ray_address else "process",
    )


@router.get(
    "/health/accepting", responses={404: {"model": Problem}, 422: {"model": Problem}, 503: {"model": Problem}}
)
async def accepting(
    full: Literal["404", "503"] = Query("503", description="the status to answer when full (HAProxy drains on 404)"),
    state: ServerState = Depends(get_state),
    settings: Settings = Depends(get_settings),
) -> JSONResponse:
    """A load balancer's check: 200 while a new live session fits in this process, ``full`` (503, or 404 for
    HAProxy's ``http-check disable-on-404``: sessions already here keep reaching it) when it is at
    ``max_sessions`` or its frames come late (``admit_max_late_pct``)."""
    open_now = len(state.manager.sessions)
    why = state.manager.full()
    room = why is None
    body: dict[str, object] = {
        "accepting": room,
        "sessions": open_now,
        "max_sessions": settings.max_sessions,
        "frames_late_pct": state.manager.load.late_pct(),
    }
    if why is not None:
        body["detail"] = why
    return JSONResponse(body, status_code=200 if room else int(full), headers=None if room else {"Retry-After": "10"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(require_admin)],
    responses={401: {"model": Problem}, 403: {"model": Problem}, 429: {"model": Problem}},
)
async def metrics(state: ServerState = Depends(get_state), settings: Settings = Depends(get_settings)) -> str:
    """Prometheus text format: sessions, frame rates, queue depths, latencies, jobs (operators only: an admin key)."""
    sessions = list(state.manager.sessions.values())
    statuses = [(s.id, s.status()) for s in sessions]
    lines = state.metrics.render()
    lines += gauge("talker_sessions_active", "live sessions", [(None, len(sessions))])
    lines += gauge("talker_sessions_max", "session limit", [(None, settings.max_sessions)])
    lines += gauge(
        "talker_session_fps", "video frames sent per second", [({"session": i}, st.fps) for i, st in statuses]
    )
    lines += gauge(
        "talker_session_say_queue",
        "say requests waiting for the voice",
        [({"session": i}, st.say_queue) for i, st in statuses],
    )
    lines += gauge(
        "talker_session_segments_waiting",
        "synthesized sentences waiting to play",
        [({"session": i}, st.segments_waiting) for i, st in statuses],
    )
    lines += gauge(
        "talker_session_frames_ahead",
        "rendered frames waiting to be sent",
        [({"session": i}, st.frames_rendered_ahead) for i, st in statuses],
    )
    lines += gauge(
        "talker_session_speaking",
        "1 while the avatar speaks",
        [({"session": i}, float(st.speaking)) for i, st in statuses],
    )
    lines += gauge(
        "talker_session_render_cpu_cores",
        "cores the session's render process has used since it started",
        [({"session": i}, st.render_cpu_cores) for i, st in statuses if st.render_cpu_cores is not None],
    )
    late = state.manager.load.late_pct()
    lines += gauge(
        "talker_frames_late_percent",
        "video frames that came late over the last 10 s (new sessions are refused above admit_max_late_pct)",
        [(None, late)] if late is not None else [],
    )
    counts = state.jobs.counts()
    lines += gauge("talker_render_jobs", "render jobs by status", [({"status": k}, v) for k, v in counts.items()])
    return "\n".join(lines) + "\n"


@router.get(
    "/config",
    response_model=ClientConfig,
    dependencies=[Depends(require_api_key)],
    responses={401: {"model": Problem}, 403: {"model": Problem}, 429: {"model": Problem}},
)
async def client_config(settings: Settings = Depends(get_settings)) -> ClientConfig:
    """What the browser page needs: ICE servers (STUN/TURN) and limits."""
    return ClientConfig(
        ice_servers=settings.ice_servers(),
        fps=settings.fps,
        width=settings.size,
        height=settings.size,
        max_say_chars=settings.max_say_chars,
        max_upload_bytes=settings.max_upload_bytes,
    )
