"""Offline render jobs: text + portrait -> MP4, persisted across restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse

from server.deps import (
    check_quota,
    get_jobs,
    get_owners,
    get_personas,
    get_portraits,
    get_settings,
    get_state,
    require_api_key,
)
from server.jobs import JobStore
from server.portraits import DEFAULT_PORTRAIT, EXTENSIONS, PortraitStore
from server.routes.avatars import get_avatars
from server.routes.avatars import resolve as resolve_avatar
from server.routes.jobviews import cancel_job, delete_job, get_job, job_info, job_result, list_jobs
from server.routes.portraits import check_upload, read_upload
from server.schemas import MAX_SEED, JobInfo, Problem
from server.settings import Settings
from server.tenancy import OwnerStore, Principal
from talker.persona import PersonaNotFound, PersonaStore
from talker.stages import clean_text

router = APIRouter(prefix="/renders", tags=["renders"])


@router.post(
    "",
    status_code=202,
    response_model=JobInfo,
    responses={
        400: {"model": Problem},
        404: {"model": Problem},
        413: {"model": Problem},
        415: {"model": Problem},
        422: {"model": Problem},
        429: {"model": Problem},
        507: {"model": Problem},
    },
)
async def create_render(
    request: Request,
    text: str = Form(..., description="the words to speak"),
    portrait: UploadFile | None = File(None, description="a portrait image (else portrait_id or the default)"),
    portrait_id: str = Form(DEFAULT_PORTRAIT, description="'default' or an id from POST /portraits"),
    persona_id: str | None = Form(
        None, description="a persona from POST /personas: its face, voice and manner (portrait ignored)"
    ),
    avatar: str | None = Form(
        None, description="a video avatar from POST /avatars: its loop is the face (with persona_id: its voice)"
    ),
    seed: int = Form(0, ge=0, le=MAX_SEED, description="seed for blinks and head motion"),
    settings: Settings = Depends(get_settings),
    store: JobStore = Depends(get_jobs),
    portraits: PortraitStore = Depends(get_portraits),
    personas: PersonaStore = Depends(get_personas),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> JobInfo:
    """Queue a render; poll GET /renders/{id} for progress, then fetch /renders/{id}/result. With a video
    avatar the MP4 has the avatar's size and frame rate."""
    text = clean_text(text)
    check_quota(who, settings, store, owners)
    src: tuple[bytes, str] | Path | None = None
    if avatar:
        state = get_state(request)
        video = await asyncio.to_thread(resolve_avatar, get_avatars(request), store, who.tenant, avatar)
        persona = None
        if persona_id:
            try:
                persona = await asyncio.to_thread(personas.get, persona_id)
            except PersonaNotFound:
                persona = None
            if persona is None or not state.owners.may_see(who, "persona", persona_id):
                raise HTTPException(404, f"no persona {persona_id!r}; create one with POST /personas")
        fps, size = video.fps, video.size[0]
        job = await asyncio.to_thread(
            store.create, text, f"avatar:{avatar}", None, fps, size, seed, persona, who.tenant, avatar, video.folder
        )
        return job_info(job, request)
    if persona_id:
        try:
            persona = await asyncio.to_thread(personas.get, persona_id)
        except PersonaNotFound:
            persona = None
        if persona is None or not owners.may_see(who, "persona", persona_id):
            raise HTTPException(404, f"no persona {persona_id!r}; create one with POST /personas")
        job = await asyncio.to_thread(
            store.create, text, f"persona:{persona.id}", None, settings.fps, settings.size, seed, persona, who.tenant
        )
        return job_info(job, request)
    if portrait is not None and portrait.filename:
        data = await read_upload(portrait, settings)
        image = await check_upload(request, data)
        src = (image.data, EXTENSIONS[image.format])
        portrait_id = "upload"
    elif portrait_id != DEFAULT_PORTRAIT:
        path = portraits.path(portrait_id)
        if path is None or not owners.may_see(who, "portrait", portrait_id):
            raise HTTPException(404, f"no portrait {portrait_id!r}; upload one with POST /portraits")
        src = path
    job = await asyncio.to_thread(
        store.create, text, portrait_id, src, settings.fps, settings.size, seed, None, who.tenant
    )
    return job_info(job, request)


@router.get("", response_model=list[JobInfo])
async def list_renders(
    request: Request, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> list[JobInfo]:
    """Your render jobs, newest first (an admin key lists every tenant's)."""
    return await list_jobs(store, who, "render", request)


@router.get("/{job_id}", response_model=JobInfo, responses={404: {"model": Problem}})
async def get_render(
    job_id: str, request: Request, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> JobInfo:
    return job_info(get_job(store, job_id, who, "render"), request)


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 404: {"model": Problem}, 409: {"model": Problem}},
)
async def render_result(
    job_id: str, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> FileResponse:
    return job_result(get_job(store, job_id, who, "render"))


@router.post("/{job_id}/cancel", response_model=JobInfo, responses={404: {"model": Problem}, 409: {"model": Problem}})
async def cancel_render(
    job_id: str, request: Request, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> JobInfo:
    """Stop a queued or running job (a running one stops at its next frame); its record stays, 'cancelled'.
    409 when it has already finished."""
    return cancel_job(store, get_job(store, job_id, who, "render"), who, request)


@router.delete("/{job_id}", response_model=JobInfo, responses={404: {"model": Problem}})
async def delete_render(
    job_id: str, request: Request, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> JobInfo:
    """Delete a job with its files (status 'deleted'); a queued or running job is cancelled first."""
    return await delete_job(store, get_job(store, job_id, who, "render"), request)
