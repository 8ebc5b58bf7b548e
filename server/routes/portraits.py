"""Portraits: upload a face to use in sessions and renders (each tenant sees its own)."""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response, UploadFile

from server.deps import check_quota, get_engine, get_owners, get_portraits, get_settings, get_state, require_api_key
from server.engine import Engine
from server.portraits import (
    DEFAULT_PORTRAIT,
    ImageInfo,
    PortraitStore,
    UploadError,
    check_image,
    decode_rgb,
    release_memory,
)
from server.schemas import PortraitInfo, Problem
from server.settings import Settings
from server.tenancy import OwnerStore, Principal
from talker.stages import NoFaceError

router = APIRouter(prefix="/portraits", tags=["portraits"])


async def read_upload(file: UploadFile, settings: Settings) -> bytes:
    """The upload's bytes, refusing more than ``max_upload_bytes`` (413) without reading it all."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise UploadError(413, f"the uploaded portrait is over the limit of {settings.max_upload_bytes} bytes")
    return data


def _checked(data: bytes, settings: Settings) -> ImageInfo:
    try:
        return check_image(data, settings.max_upload_bytes, settings.max_image_pixels)
    finally:
        release_memory()


def _decoded(data: bytes, settings: Settings) -> tuple[ImageInfo, np.ndarray]:
    try:
        info = check_image(data, settings.max_upload_bytes, settings.max_image_pixels)
        return info, decode_rgb(data)
    finally:
        release_memory()


async def check_upload(request: Request, data: bytes) -> ImageInfo:
    """Validate an uploaded image in a worker thread, at most ``decode_slots`` at once (the size is read
    from the header first, so an oversized picture is refused before it is decoded)."""
    state = get_state(request)
    async with state.decode_gate:
        return await asyncio.to_thread(_checked, data, get_settings(request))


async def decode_upload(request: Request, data: bytes) -> tuple[ImageInfo, np.ndarray]:
    """``check_upload`` and the RGB pixels (numpy uint8 H x W x 3), decoded once in the same slot."""
    state = get_state(request)
    async with state.decode_gate:
        return await asyncio.to_thread(_decoded, data, get_settings(request))


@router.post(
    "",
    status_code=201,
    response_model=PortraitInfo,
    responses={
        400: {"model": Problem},
        413: {"model": Problem},
        415: {"model": Problem},
        422: {"model": Problem},
        507: {"model": Problem},
    },
)
async def upload_portrait(
    request: Request,
    file: UploadFile,
    settings: Settings = Depends(get_settings),
    store: PortraitStore = Depends(get_portraits),
    engine: Engine = Depends(get_engine),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> PortraitInfo:
    """Upload a photo or painting with a face (JPEG, PNG, WebP...). The face is found and rigged now
    (about a second), so sessions that use it start at once. 422 when no face is found."""
    data = await read_upload(file, settings)
    info = await check_upload(request, data)
    state = get_state(request)
    check_quota(who, settings, state.jobs, owners, len(data))
    pid = await asyncio.to_thread(store.save, data, info)
    ok = False
    try:
        await asyncio.to_thread(engine.avatar, store, pid, settings.frame_size)
        await asyncio.to_thread(owners.add, "portrait", pid, who.tenant, len(data))
        ok = True
    except NoFaceError as e:
        engine.forget(pid)
        raise UploadError(
            422,
            "no face found in the uploaded image: use a photo or painting with a clearly visible, roughly frontal "
            "face, or make a persona from it with five guide points (POST /personas, form field 'points')",
        ) from e
    except ValueError:
        engine.forget(pid)
        raise
    finally:
        keep = (lambda: True) if ok else (lambda: bool(owners.owners("portrait", pid)))
        await asyncio.to_thread(store.settle, pid, keep)
    return PortraitInfo(portrait_id=pid, width=info.width, height=info.height, format=info.format)


@router.get("", response_model=list[PortraitInfo])
async def list_portraits(
    store: PortraitStore = Depends(get_portraits),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> list[PortraitInfo]:
    """The bundled default and your uploaded portraits."""
    ids = await asyncio.to_thread(store.ids)
    mine = [p for p in ids if owners.may_see(who, "portrait", p)]
    return [PortraitInfo(portrait_id=DEFAULT_PORTRAIT)] + [PortraitInfo(portrait_id=p) for p in mine]


@router.delete("/{portrait_id}", status_code=204, responses={404: {"model": Problem}, 409: {"model": Problem}})
async def delete_portrait(
    portrait_id: str,
    store: PortraitStore = Depends(get_portraits),
    engine: Engine = Depends(get_engine),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> Response:
    """Delete your portrait (its file goes when no other tenant uploaded the same picture)."""
    if portrait_id == DEFAULT_PORTRAIT:
        raise HTTPException(409, "the bundled default portrait cannot be deleted")
    if store.path(portrait_id) is None or not owners.may_see(who, "portrait", portrait_id):
        raise HTTPException(404, f"no portrait {portrait_id!r}")
    remaining = await asyncio.to_thread(owners.remove, "portrait", portrait_id, None if who.admin else who.tenant)
    if remaining == 0:
        store.delete(portrait_id)
        engine.forget(portrait_id)
    return Response(status_code=204)
