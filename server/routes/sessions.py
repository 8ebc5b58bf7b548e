"""Live sessions: WebRTC offer/answer, say, interrupt, close."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from server.deps import client_address, get_manager, get_settings, get_state, require_api_key
from server.manager import SessionManager
from server.routes.avatars import get_avatars
from server.routes.avatars import resolve as resolve_avatar
from server.schemas import (
    Answer,
    ChatAccepted,
    ChatBody,
    InterruptResult,
    Offer,
    Problem,
    SayAccepted,
    SayBody,
    SessionInfo,
)
from server.settings import Settings
from server.tenancy import Principal

router = APIRouter(prefix="/sessions", tags=["sessions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
    429: {"model": Problem},
}


@router.post("", status_code=201, response_model=Answer, responses=_ERRORS)
async def create_session(
    offer: Offer,
    request: Request,
    response: Response,
    manager: SessionManager = Depends(get_manager),
    settings: Settings = Depends(get_settings),
    who: Principal = Depends(require_api_key),
) -> Answer:
    """Answer a WebRTC offer: the answer's audio (Opus, 48 kHz) and video tracks show the avatar.

    With ``persona_id`` the avatar is that persona (face, voice, manner, chat endpoint); with ``avatar``
    it is one of your video avatars (POST /avatars), its loop playing while silent. 429 when the server
    already runs ``max_sessions`` connected sessions, when your address has sessions waiting for their
    peer, or sends offers too fast; 404 for an unknown portrait, persona or video avatar; 409 for a video
    avatar not ready (still being prepared, or failed).
    """
    state = get_state(request)
    addr = client_address(request)
    if not state.session_rate.allow(addr):
        raise HTTPException(
            429,
            f"more than {settings.session_rate_per_min} session offers a minute from your address; slow down",
            headers={"Retry-After": str(state.session_rate.retry_after(addr))},
        )
    video = None
    if offer.avatar:
        avatars = get_avatars(request)
        video = await asyncio.to_thread(resolve_avatar, avatars, state.jobs, who.tenant, offer.avatar)
    session, sdp = await manager.create(
        offer.sdp,
        offer.portrait_id,
        offer.persona_id,
        who,
        addr,
        lambda kind, item: state.owners.may_see(who, kind, item),
        peer_audio=offer.peer_audio == "speak",
        video=video,
    )
    response.headers["Location"] = f"/sessions/{session.id}"  # (a proxy keeps the session's calls on this process)
    return Answer(
        session_id=session.id,
        sdp=sdp,
        fps=settings.fps,
        width=settings.size,
        height=settings.size,
        idle_timeout_s=settings.idle_timeout_s,
        max_session_s=settings.max_session_s,
    )


@router.get("", response_model=list[SessionInfo])
async def list_sessions(
    manager: SessionManager = Depends(get_manager), who: Principal = Depends(require_api_key)
) -> list[SessionInfo]:
    """Your live sessions (an admin key lists every tenant's)."""
    return [SessionInfo(**asdict(s.status())) for s in manager.visible(who)]


@router.get("/{session_id}", response_model=SessionInfo, responses=_ERRORS)
async def get_session(
    session_id: str, manager: SessionManager = Depends(get_manager), who: Principal = Depends(require_api_key)
) -> SessionInfo:
    return SessionInfo(**asdict(manager.get(session_id, who).status()))


@router.post("/{session_id}/say", status_code=202, response_model=SayAccepted, responses=_ERRORS)
async def say(
    session_id: str,
    body: SayBody,
    manager: SessionManager = Depends(get_manager),
    who: Principal = Depends(require_api_key),
) -> SayAccepted:
    """Speak text after what is already queued (``interrupt: true`` replaces it)."""
    utterance, waiting = manager.get(session_id, who).say(body.text, body.interrupt)
    return SayAccepted(session_id=session_id, utterance_id=utterance, waiting=waiting)


@router.post("/{session_id}/chat", status_code=202, response_model=ChatAccepted, responses=_ERRORS)
async def chat(
    session_id: str,
    body: ChatBody,
    manager: SessionManager = Depends(get_manager),
    who: Principal = Depends(require_api_key),
) -> ChatAccepted:
    """Talk to the avatar: with a chat endpoint (the persona's, or the server's ``TALKER_CHAT_BASE_URL``)
    the reply streams from it and each sentence is spoken as soon as it is complete, after what is
    already queued (``interrupt: true`` replaces it; ``/interrupt`` also stops the reply). Without an
    endpoint the text is repeated, as ``/say`` does."""
    utterance, waiting, mode = manager.get(session_id, who).say_or_chat(body.text, body.interrupt)
    return ChatAccepted(session_id=session_id, utterance_id=utterance, waiting=waiting, mode=mode)  # type: ignore[arg-type]


@router.post("/{session_id}/interrupt", response_model=InterruptResult, responses=_ERRORS)
async def interrupt(
    session_id: str, manager: SessionManager = Depends(get_manager), who: Principal = Depends(require_api_key)
) -> InterruptResult:
    """Stop speaking now: the next frame not yet sent is idle again, queued text is dropped."""
    done = manager.get(session_id, who).interrupt()
    return InterruptResult(session_id=session_id, interrupted=done.stopped, idle_from_frame=done.idle_from_frame)


@router.delete("/{session_id}", status_code=204, responses=_ERRORS)
async def close_session(
    session_id: str, manager: SessionManager = Depends(get_manager), who: Principal = Depends(require_api_key)
) -> Response:
    manager.get(session_id, who)
    await manager.close(session_id, "closed by the client")
    return Response(status_code=204)
