"""Video avatars: a short clip of a person, prepared once in the background, then the face of live sessions
and render jobs (its loop plays while silent, its mouth is redrawn to speech). Each tenant sees its own."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path, PurePath

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile

from server.avatars import AvatarStore, first_look
from server.deps import check_quota, get_jobs, get_manager, get_owners, get_settings, get_state, require_api_key
from server.jobs import ACTIVE, DONE, QUEUED, Job, JobStore
from server.manager import SessionManager
from server.portraits import UploadError
from server.routes.dubs import _ERRORS, _VIDEO_SUFFIXES, _spool, _suffix
from server.routes.portraits import in_upload_pool
from server.schemas import AvatarInfo, Problem
from server.settings import Settings
from server.tenancy import OwnerStore, Principal
from talker.avatar_player import VideoAvatar
from talker.video_avatar import MAX_CLIP_S, MIN_CLIP_S, VideoAvatarError, VideoAvatarInfo, check_name

router = APIRouter(prefix="/avatars", tags=["avatars"])


def get_avatars(request: Request) -> AvatarStore:
    store = get_state(request).avatars
    if store is None:  # pragma: no cover - the lifespan always makes one
        raise HTTPException(503, "this server keeps no video avatars")
    return store


def ready_info(info: VideoAvatarInfo) -> AvatarInfo:
    return AvatarInfo(
        name=info.name,
        status="ready",
        progress=1.0,
        stage="done",
        source=info.source,
        fps=info.fps,
        width=info.size[0],
        height=info.size[1],
        frames=info.n_frames,
        loop_s=round(info.n_frames / info.fps, 3),
        span_s=info.span_s,
        crossfade_frames=info.crossfade,
        mouths=info.bank,
        idle_mouth="shut" if info.idle_mouth == "shut" else "own",
        prepare_s=info.prepare_s,
        bytes=info.bytes,
        notes=list(info.notes),
    )


def job_view(job: Job, notes: list[str] | None = None) -> AvatarInfo:
    status = {QUEUED: "queued", DONE: "ready"}.get(job.status, "preparing" if job.status in ACTIVE else job.status)
    return AvatarInfo(
        name=job.portrait_id.removeprefix("avatar:"),
        status=status,  # type: ignore[arg-type]
        progress=job.progress,
        stage=job.stage,
        error=job.error,
        job_id=job.id,
        created_at=job.created_at,
        notes=notes or [],
    )


def _view(avatars: AvatarStore, jobs: JobStore, tenant: str, name: str) -> AvatarInfo | None:
    """A tenant's avatar as it stands: ready, or its newest preparation (queued, running, failed)."""
    info = avatars.info(tenant, name)
    if info is not None:
        return ready_info(info)
    pending = [j for j in jobs.avatar_jobs(tenant, name) if j.status != DONE]
    return job_view(pending[0]) if pending else None


def _clip_name(upload: UploadFile) -> str:
    """The upload's file name made safe to keep (the avatar reports it as its source)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", PurePath(upload.filename or "").stem)[:64].strip("_") or "clip"
    return stem + _suffix(upload, _VIDEO_SUFFIXES, ".mp4")


def _probe(video: Path, settings: Settings) -> tuple[float, int]:
    """(fps, faces seen) of an uploaded clip; ``UploadError`` 415 for what is not a readable video, 422 for a
    clip too short or too long or with no face in its first seconds."""
    from talker.video import VideoError, probe_video

    limit_s = min(MAX_CLIP_S, settings.max_video_s)
    try:
        info = probe_video(video, max_duration_s=limit_s + 1.0, max_bytes=settings.max_video_bytes)
        duration = info.duration_s or (info.n_frames / info.fps)
        if duration < MIN_CLIP_S or duration > limit_s:
            raise UploadError(
                422,
                f"the uploaded video lasts {duration:.1f} s; a video avatar needs a clip of "
                f"{MIN_CLIP_S:g} s to {limit_s:g} s",
            )
        faces = first_look(video, info.fps)
    except VideoError as e:
        text = str(e).replace(str(video), "the uploaded video")
        raise UploadError(422 if "limit" in text else 415, text) from e
    if faces == 0:
        raise UploadError(
            422,
            "no face found in the uploaded video (looked at its first seconds): a video avatar needs a clip of one "
            "person facing the camera, head and shoulders in the picture",
        )
    return info.fps, faces


def _queue(
    avatars: AvatarStore, jobs: JobStore, tenant: str, name: str, clip: Path, params: dict[str, object], size: int
) -> Job:
    """Queue the preparation unless the name is taken (409); an earlier failed one of the name is dropped."""
    with avatars.naming:
        if avatars.folder(tenant, name) is not None:
            raise HTTPException(409, f"you already have a video avatar named {name!r}; delete it or choose another")
        earlier = jobs.avatar_jobs(tenant, name)
        if any(j.status in ACTIVE for j in earlier):
            raise HTTPException(409, f"a video avatar named {name!r} is being prepared; wait for it or delete it")
        for j in earlier:
            jobs.delete(j.id)
        return jobs.create_avatar(clip, name, params, size, tenant)


@router.post("", status_code=202, response_model=AvatarInfo, responses=_ERRORS)
async def create_avatar(
    request: Request,
    video: UploadFile = File(..., description="a clip of one person, 5 s to 3 min (MP4, MOV, MKV, WebM...)"),
    name: str = Form(..., description="the avatar's name: 1-64 letters, digits, '-' or '_'"),
    face_index: int | None = Form(
        None, ge=0, le=64, description="which face when several show (0 = leftmost; default the largest)"
    ),
    settings: Settings = Depends(get_settings),
    jobs: JobStore = Depends(get_jobs),
    owners: OwnerStore = Depends(get_owners),
    avatars: AvatarStore = Depends(get_avatars),
    who: Principal = Depends(require_api_key),
) -> AvatarInfo:
    """Upload a clip to become a video avatar. The clip is checked now (a readable video, 5 s to 3 min, a face
    in it); the preparation (following the face, choosing the loop, keeping the person's own mouths) runs in
    the background: poll GET /avatars/{name} until it is ready, then open sessions with ``avatar: name``."""
    try:
        check_name(name)
    except VideoAvatarError as e:
        raise HTTPException(422, str(e)) from e
    check_quota(who, settings, jobs, owners)
    if avatars.folder(who.tenant, name) is not None:  # (checked again when queued: refused before the upload is read)
        raise HTTPException(409, f"you already have a video avatar named {name!r}; delete it or choose another")
    tmp = Path(tempfile.mkdtemp(prefix=".upload-", dir=settings.data_dir))
    try:
        vname = _clip_name(video)
        size = await asyncio.to_thread(_spool, video.file, tmp / vname, settings.max_video_bytes, "video")
        check_quota(who, settings, jobs, owners, size)
        _, faces = await in_upload_pool(request, _probe, tmp / vname, settings)
        params: dict[str, object] = {"video": vname, "name": name, "face_index": face_index}
        job = await asyncio.to_thread(_queue, avatars, jobs, who.tenant, name, tmp / vname, params, settings.size)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    notes = []
    if faces > 1:
        which = "the largest" if face_index is None else f"face {face_index} from the left"
        notes.append(f"the clip shows {faces} faces; the avatar will be {which} (choose with face_index)")
    return job_view(job, notes)


@router.get("", response_model=list[AvatarInfo])
async def list_avatars(
    jobs: JobStore = Depends(get_jobs),
    avatars: AvatarStore = Depends(get_avatars),
    who: Principal = Depends(require_api_key),
) -> list[AvatarInfo]:
    """Your video avatars: ready ones, and those being prepared or that failed (with the reason)."""

    def collect() -> list[AvatarInfo]:
        out = {a.name: ready_info(a) for a in avatars.list(who.tenant)}
        for j in jobs.avatar_jobs(who.tenant):  # newest first: the newest preparation of a name is shown
            view = job_view(j)
            if j.status != DONE and view.name not in out:
                out[view.name] = view
        return sorted(out.values(), key=lambda a: a.name)

    return await asyncio.to_thread(collect)


@router.get("/{name}", response_model=AvatarInfo, responses={404: {"model": Problem}})
async def get_avatar(
    name: str,
    jobs: JobStore = Depends(get_jobs),
    avatars: AvatarStore = Depends(get_avatars),
    who: Principal = Depends(require_api_key),
) -> AvatarInfo:
    """One of your video avatars: its preparation's progress, or once ready its loop, size on disk, the time
    its preparation took and notes on what was skipped."""
    found = await asyncio.to_thread(_view, avatars, jobs, who.tenant, name)
    if found is None:
        raise HTTPException(404, f"no video avatar {name!r}; upload a clip with POST /avatars")
    return found


@router.delete("/{name}", status_code=204, responses={404: {"model": Problem}, 409: {"model": Problem}})
async def delete_avatar(
    name: str,
    jobs: JobStore = Depends(get_jobs),
    avatars: AvatarStore = Depends(get_avatars),
    manager: SessionManager = Depends(get_manager),
    who: Principal = Depends(require_api_key),
) -> Response:
    """Delete one of your video avatars with its files (a preparation still running is cancelled). 409 while a
    live session shows it."""
    live = manager.using_avatar(who.tenant, name)
    if live:
        raise HTTPException(409, f"video avatar {name!r} is shown by {len(live)} live session(s); close them first")

    def drop() -> bool:
        with avatars.naming:
            found = False
            for j in jobs.avatar_jobs(who.tenant, name):
                if j.status in ACTIVE:
                    jobs.cancel(j.id)
                found = jobs.delete(j.id) or found
            return avatars.delete(who.tenant, name) or found

    if not await asyncio.to_thread(drop):
        raise HTTPException(404, f"no video avatar {name!r}")
    return Response(status_code=204)


def resolve(avatars: AvatarStore, jobs: JobStore, tenant: str, name: str) -> VideoAvatar:
    """A tenant's ready video avatar for a session or a render; 404 unknown, 409 not ready (still being
    prepared, or failed: the reason), 422 damaged."""
    try:
        found = avatars.load(tenant, name)
    except VideoAvatarError as e:
        raise HTTPException(422, str(e).replace(str(avatars.data_dir), "the data folder")) from e
    if found is not None:
        return found
    pending = [j for j in jobs.avatar_jobs(tenant, name) if j.status != DONE]
    if pending and pending[0].status in ACTIVE:
        done = 100 * pending[0].progress
        raise HTTPException(409, f"video avatar {name!r} is still being prepared ({done:.0f} % done); try again soon")
    if pending and pending[0].status == "failed":
        raise HTTPException(409, f"video avatar {name!r} could not be prepared: {pending[0].error}")
    raise HTTPException(404, f"no video avatar {name!r}; upload a clip with POST /avatars")
