"""Dubbing jobs: a video of a face + new speech (a recording, or text and a voice) -> the same video with
its lips re-synced, persisted like render jobs."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path, PurePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse

from server.deps import check_quota, get_jobs, get_owners, get_settings, require_api_key
from server.jobs import JobStore
from server.portraits import UploadError
from server.routes.jobviews import cancel_job, delete_job, get_job, job_info, job_result, list_jobs
from server.schemas import MAX_SEED, JobInfo, Problem
from server.settings import Settings
from server.tenancy import OwnerStore, Principal
from talker.stages import clean_text

router = APIRouter(prefix="/dubs", tags=["dubs"])

_VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"}
_AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".opus", ".aac", ".webm", ".mp4"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    413: {"model": Problem},
    415: {"model": Problem},
    422: {"model": Problem},
    429: {"model": Problem},
    507: {"model": Problem},
}


def _suffix(upload: UploadFile, allowed: set[str], default: str) -> str:
    suffix = PurePath(upload.filename or "").suffix.lower()
    return suffix if suffix in allowed else default


def _spool(src: Any, dest: Path, limit: int, what: str) -> int:
    """Copy an upload to ``dest`` in 1 MB pieces; 413 past ``limit`` bytes (the copy is removed)."""
    n = 0
    with open(dest, "wb") as out:
        while True:
            piece = src.read(1 << 20)
            if not piece:
                break
            n += len(piece)
            if n > limit:
                out.close()
                dest.unlink(missing_ok=True)
                raise UploadError(413, f"the uploaded {what} is over the limit of {limit} bytes")
            out.write(piece)
    if n == 0:
        dest.unlink(missing_ok=True)
        raise UploadError(400, f"the uploaded {what} is empty")
    return n


def _probe(video: Path, settings: Settings) -> None:
    """415/422 for a file that is not a usable video (no video stream, corrupt, too long or too large)."""
    from talker.video import VideoError, probe_video

    try:
        probe_video(video, max_duration_s=settings.max_video_s, max_bytes=settings.max_video_bytes)
    except VideoError as e:
        text = str(e).replace(str(video), "the uploaded video")
        raise UploadError(422 if "limit" in text else 415, text) from e


@router.post("", status_code=202, response_model=JobInfo, responses=_ERRORS)
async def create_dub(
    request: Request,
    video: UploadFile = File(..., description="a video of a person's face (MP4, MOV, MKV, WebM...)"),
    audio: UploadFile | None = File(None, description="the new speech as a recording (else give text)"),
    text: str | None = Form(
        None,
        description="the new words (with audio: its English transcript, optional; without one the learned "
        "lip-sync model reads the mouth from the recording, any language)",
    ),
    voice_id: str | None = Form(None, description="a voice from GET /voices to speak the text (no audio)"),
    fit: Literal["loop", "pingpong", "hold", "cut"] = Form(
        "loop", description="speech longer or shorter than the video: loop, pingpong, hold the last frame, or cut"
    ),
    face_index: int | None = Form(None, ge=0, le=64, description="which face (0 = leftmost; default the largest)"),
    seed: int = Form(0, ge=0, le=MAX_SEED),
    settings: Settings = Depends(get_settings),
    store: JobStore = Depends(get_jobs),
    owners: OwnerStore = Depends(get_owners),
    who: Principal = Depends(require_api_key),
) -> JobInfo:
    """Queue a dub; poll GET /dubs/{id} for progress, then fetch /dubs/{id}/result (MP4: the video's own
    frames with the mouth region re-rendered to the new speech, and the new speech as its sound)."""
    has_audio = audio is not None and bool(audio.filename)
    if text is not None and not text.strip():
        text = None
    if not has_audio and text is None:
        raise HTTPException(422, "give the new speech: an audio recording, or text (with an optional voice_id)")
    if has_audio and voice_id:
        raise HTTPException(422, "voice_id chooses the voice for text; with a recording the recording is the voice")
    if voice_id and ("/" in voice_id or "\\" in voice_id or voice_id.endswith(".onnx")):
        raise HTTPException(422, f"voice_id {voice_id!r}: choose a voice from GET /voices (files are not accepted)")
    words = clean_text(text) if text is not None else ""
    check_quota(who, settings, store, owners)
    tmp = Path(tempfile.mkdtemp(prefix=".upload-", dir=settings.data_dir))
    try:
        vname = "input" + _suffix(video, _VIDEO_SUFFIXES, ".mp4")
        size = await asyncio.to_thread(_spool, video.file, tmp / vname, settings.max_video_bytes, "video")
        files = {vname: tmp / vname}
        if has_audio:
            assert audio is not None
            aname = "speech" + _suffix(audio, _AUDIO_SUFFIXES, ".wav")
            size += await asyncio.to_thread(_spool, audio.file, tmp / aname, settings.max_video_bytes, "audio")
            files[aname] = tmp / aname
        check_quota(who, settings, store, owners, size)
        await asyncio.to_thread(_probe, tmp / vname, settings)
        params: dict[str, object] = {
            "video": vname,
            "audio": next((n for n in files if n.startswith("speech")), None),
            "voice_id": voice_id,
            "fit": fit,
            "face_index": face_index,
        }
        job = await asyncio.to_thread(store.create_dub, files, words, params, seed, who.tenant)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return job_info(job, request)


@router.get("", response_model=list[JobInfo])
async def list_dubs(
    request: Request, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> list[JobInfo]:
    """Your dubs, newest first (an admin key lists every tenant's)."""
    return await list_jobs(store, who, "dub", request)


@router.get("/{job_id}", response_model=JobInfo, responses={404: {"model": Problem}})
async def get_dub(
    job_id: str, request: Request, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> JobInfo:
    return job_info(get_job(store, job_id, who, "dub"), request)


@router.get(
    "/{job_id}/result",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 404: {"model": Problem}, 409: {"model": Problem}},
)
async def dub_result(
    job_id: str, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> FileResponse:
    return job_result(get_job(store, job_id, who, "dub"))


@router.post("/{job_id}/cancel", response_model=JobInfo, responses={404: {"model": Problem}, 409: {"model": Problem}})
async def cancel_dub(
    job_id: str, request: Request, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> JobInfo:
    """Stop a queued or running dub; its record stays, 'cancelled'."""
    return cancel_job(store, get_job(store, job_id, who, "dub"), who, request)


@router.delete("/{job_id}", response_model=JobInfo, responses={404: {"model": Problem}})
async def delete_dub(
    job_id: str, request: Request, store: JobStore = Depends(get_jobs), who: Principal = Depends(require_api_key)
) -> JobInfo:
    """Delete a dub with its files (status 'deleted'); a queued or running one is cancelled first."""
    return await delete_job(store, get_job(store, job_id, who, "dub"), request)
