"""What the render and dub routers share: a job as its JSON, and looking up, listing, cancelling, deleting a
caller's job and serving its result (jobs of both kinds live in one ``JobStore``)."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse

from server.jobs import ACTIVE, DONE, Job, JobStore
from server.schemas import JobInfo
from server.tenancy import Principal

_NOUN = {"render": "render job", "dub": "dub"}
_RESULT_ROUTE = {"render": "render_result", "dub": "dub_result"}


def kind_of(job: Job) -> str:
    return job.kind or "render"


def job_info(job: Job, request: Request | None = None, status: str | None = None) -> JobInfo:
    url = None
    if job.status == DONE and request is not None:
        url = str(request.url_for(_RESULT_ROUTE[kind_of(job)], job_id=job.id))
    return JobInfo(
        job_id=job.id,
        status=status or job.status,  # type: ignore[arg-type]
        progress=job.progress,
        stage=job.stage,
        error=job.error,
        attempts=job.attempts,
        portrait_id=job.portrait_id,
        persona_id=job.persona_id,
        fps=job.fps,
        size=job.size,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_s=job.duration_s,
        result_url=url,
    )


def get_job(store: JobStore, job_id: str, who: Principal, kind: str) -> Job:
    """The caller's job of this kind; 404 for anything else (another tenant's looks like none)."""
    job = store.get(job_id)
    if job is None or kind_of(job) != kind or not who.may_see(job.owner):
        raise HTTPException(404, f"no {_NOUN[kind]} {job_id!r}")
    return job


async def list_jobs(store: JobStore, who: Principal, kind: str, request: Request) -> list[JobInfo]:
    """The caller's jobs of this kind, newest first (an admin's: every tenant's)."""
    jobs = await asyncio.to_thread(store.list, 100, None if who.admin else who.tenant, kind)
    return [job_info(j, request) for j in jobs]


def job_result(job: Job) -> FileResponse:
    """The finished job's MP4; 409 while it is not done."""
    if job.status != DONE or not job.result_file:
        noun = _NOUN[kind_of(job)]
        raise HTTPException(409, f"{noun} {job.id} is {job.status}, not done" + (f": {job.error}" if job.error else ""))
    prefix = "talker-dub" if kind_of(job) == "dub" else "talker"
    return FileResponse(job.result_file, media_type="video/mp4", filename=f"{prefix}-{job.id}.mp4")


def cancel_job(store: JobStore, job: Job, who: Principal, request: Request) -> JobInfo:
    """Stop a queued or running job (a running one stops at its next frame); its record stays. 409 when done."""
    if job.status not in ACTIVE:
        noun = _NOUN[kind_of(job)]
        raise HTTPException(409, f"{noun} {job.id} is {job.status}; only queued or running ones can be cancelled")
    store.cancel(job.id)
    return job_info(get_job(store, job.id, who, kind_of(job)), request)


async def delete_job(store: JobStore, job: Job, request: Request) -> JobInfo:
    """Delete a job with its files (status 'deleted'), cancelling it first when it is queued or running."""
    if job.status in ACTIVE:
        store.cancel(job.id)
    await asyncio.to_thread(store.delete, job.id)
    return job_info(job, request, status="deleted")
