"""Portraits: upload a face to use in sessions and renders."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, HTTPException, Response, UploadFile

from server.deps import get_engine, get_portraits, get_settings
from server.engine import Engine
from server.portraits import DEFAULT_PORTRAIT, PortraitStore, UploadError, check_image
from server.schemas import PortraitInfo, Problem
from server.settings import Settings

router = APIRouter(prefix="/portraits", tags=["portraits"])


async def read_upload(file: UploadFile, settings: Settings) -> bytes:
    """The upload's bytes, refusing more than ``max_upload_bytes`` (413) without reading it all."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise UploadError(413, f"the uploaded portrait is over the limit of {settings.max_upload_bytes} bytes")
    return data


@router.post(
    "",
    status_code=201,
    response_model=PortraitInfo,
    responses={400: {"model": Problem}, 413: {"model": Problem}, 415: {"model": Problem}, 422: {"model": Problem}},
)
async def upload_portrait(
    file: UploadFile,
    settings: Settings = Depends(get_settings),
    store: PortraitStore = Depends(get_portraits),
    engine: Engine = Depends(get_engine),
) -> PortraitInfo:
    """Upload a photo or painting with a face (JPEG, PNG, WebP...). The face is found and rigged now
    (about a second), so sessions that use it start at once. 422 when no face is found."""
    data = await read_upload(file, settings)
    info = check_image(data, settings.max_upload_bytes, settings.max_image_pixels)
    pid = store.save(data, info)
    try:
        await asyncio.to_thread(engine.avatar, store, pid, settings.frame_size)
    except ValueError:
        store.delete(pid)
        engine.forget(pid)
        raise
    return PortraitInfo(portrait_id=pid, width=info.width, height=info.height, format=info.format)


@router.get("", response_model=list[PortraitInfo])
async def list_portraits(store: PortraitStore = Depends(get_portraits)) -> list[PortraitInfo]:
    return [PortraitInfo(portrait_id=DEFAULT_PORTRAIT)] + [PortraitInfo(portrait_id=p) for p in store.ids()]


@router.delete("/{portrait_id}", status_code=204, responses={404: {"model": Problem}, 409: {"model": Problem}})
async def delete_portrait(
    portrait_id: str, store: PortraitStore = Depends(get_portraits), engine: Engine = Depends(get_engine)
) -> Response:
    if portrait_id == DEFAULT_PORTRAIT:
        raise HTTPException(409, "the bundled default portrait cannot be deleted")
    if not store.delete(portrait_id):
        raise HTTPException(404, f"no portrait {portrait_id!r}")
    engine.forget(portrait_id)
    return Response(status_code=204)
