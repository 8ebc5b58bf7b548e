"""Live sessions: WebRTC offer/answer, say, interrupt, close."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Response

from server.deps import get_manager, get_settings
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
from server.session import SessionManager
from server.settings import Settings

router = APIRouter(prefix="/sessions", tags=["sessions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
    429: {"model": Problem},
}


@router.post("", status_code=201, response_model=Answer, responses={400: {"model": Problem}, **_ERRORS})
async def create_session(
    offer: Offer, manager: SessionManager = Depends(get_manager), settings: Settings = Depends(get_settings)
) -> Answer:
    """Answer a WebRTC offer: the answer's audio (Opus, 48 kHz) and video tracks show the avatar.

    With ``persona_id`` the avatar is that persona (face, voice, manner, chat endpoint). 429 when the
    server already runs ``max_sessions`` sessions; 404 for an unknown portrait or persona.
    """
    session, sdp = await manager.create(offer.sdp, offer.portrait_id, offer.persona_id)
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
async def list_sessions(manager: SessionManager = Depends(get_manager)) -> list[SessionInfo]:
    return [SessionInfo(**asdict(s.status())) for s in manager.sessions.values()]


@router.get("/{session_id}", response_model=SessionInfo, responses=_ERRORS)
async def get_session(session_id: str, manager: SessionManager = Depends(get_manager)) -> SessionInfo:
    return SessionInfo(**asdict(manager.get(session_id).status()))


@router.post("/{session_id}/say", status_code=202, response_model=SayAccepted, responses=_ERRORS)
async def say(session_id: str, body: SayBody, manager: SessionManager = Depends(get_manager)) -> SayAccepted:
    """Speak text after what is already queued (``interrupt: true`` replaces it)."""
    utterance, waiting = manager.get(session_id).say(body.text, body.interrupt)
    return SayAccepted(session_id=session_id, utterance_id=utterance, waiting=waiting)


@router.post("/{session_id}/chat", status_code=202, response_model=ChatAccepted, responses=_ERRORS)
async def chat(session_id: str, body: ChatBody, manager: SessionManager = Depends(get_manager)) -> ChatAccepted:
    """Talk to the avatar: with a chat endpoint (the persona's, or the server's ``TALKER_CHAT_BASE_URL``)
    the reply streams from it and each sentence is spoken as soon as it is complete, after what is
    already queued (``interrupt: true`` replaces it; ``/interrupt`` also stops the reply). Without an
    endpoint the text is repeated, as ``/say`` does."""
    utterance, waiting, mode = manager.get(session_id).say_or_chat(body.text, body.interrupt)
    return ChatAccepted(session_id=session_id, utterance_id=utterance, waiting=waiting, mode=mode)  # type: ignore[arg-type]


@router.post("/{session_id}/interrupt", response_model=InterruptResult, responses=_ERRORS)
async def interrupt(session_id: str, manager: SessionManager = Depends(get_manager)) -> InterruptResult:
    """Stop speaking now: the next frame not yet sent is idle again, queued text is dropped."""
    done = manager.get(session_id).interrupt()
    return InterruptResult(session_id=session_id, interrupted=done.stopped, idle_from_frame=done.idle_from_frame)


@router.delete("/{session_id}", status_code=204, responses=_ERRORS)
async def close_session(session_id: str, manager: SessionManager = Depends(get_manager)) -> Response:
    manager.get(session_id)
    await manager.close(session_id, "closed by the client")
    return Response(status_code=204)
