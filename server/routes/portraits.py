"""Portraits: upload a face to use in sessions and renders (each tenant sees its own)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response, UploadFile

from server.deps import check_quota, get_engine, get_owners, get_portraits, get_settings, get_state, require_api_key
from server.engine import Engine
from server.portraits import (
    DEFAULT_PORTRAIT,
    ImageInfo,
    PortraitStore,
    PreparedImage,
    UploadError,
    prepare_upload,
    release_memory,
)
from server.schemas import PortraitInfo, Problem
from server.settings import Settings
from server.tenancy import OwnerStore, Principal
from talker.stages import NoFaceError

router = APIRouter(prefix="/portraits", tags=["portraits"])

T = TypeVar("T")


async def read_upload(file: UploadFile, settings: Settings) -> bytes:
    """The upload's bytes, refusing more than ``max_upload_bytes`` (413) without reading it all."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise UploadError(413, f"the uploaded portrait is over the limit of {settings.max_upload_bytes} bytes")
    return data


def _prepared(data: bytes, settings: Settings) -> PreparedImage:
    try:
        return prepare_upload(data, settings.max_upload_bytes, settings.max_image_pixels)
    finally:
        release_memory()


def _rig(engine: Engine, store: PortraitStore, pid: str, size: tuple[int, int]) -> None:
    try:
        engine.avatar(store, pid, size)
    finally:
        release_memory()  # (the face search over a large picture's tiles leaves freed buffers behind)


async def in_upload_pool(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run upload work (decoding, rigging) in the server's low-priority upload threads, ``decode_slots`` at
    a time, so that a burst of uploads neither piles decoded pictures up in memory nor takes the CPU from
    live sessions."""
    pool = get_state(request).upload_pool
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args, **kwargs))


async def check_upload(request: Request, data: bytes) -> PreparedImage:
    """Validate and decode an uploaded image once (the size is read from the header first, so an oversized
    picture is refused before it is decoded); a very large one comes back scaled down."""
    return await in_upload_pool(request, _prepared, data, get_settings(request))


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
    pid = hashlib.sha256(data).hexdigest()[:16]
    image = await check_upload(request, data)
    info = image.info
    state = get_state(request)
    check_quota(who, settings, state.jobs, owners, len(image.data))
    kept = ImageInfo(image.format, image.rgb.shape[1], image.rgb.shape[0])
    await asyncio.to_thread(store.save, image.data, kept, pid)
    ok = False
    try:
        await in_upload_pool(request, _rig, engine, store, pid, settings.frame_size)
        await asyncio.to_thread(owners.add, "portrait", pid, who.tenant, len(image.data))
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
