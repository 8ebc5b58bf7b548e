"""Provenance check: does an uploaded image, video or audio file carry talker's marks?"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile

from server.deps import get_settings
from server.portraits import release_memory
from server.routes.portraits import in_upload_pool, read_upload
from server.schemas import MarkReport, Problem, VerifyReport
from server.settings import Settings
from talker.provenance import IMAGE_EXTS, MIME, Report, UnreadableMedia, verify

router = APIRouter(prefix="/verify", tags=["verify"])
SUFFIXES = IMAGE_EXTS | set(MIME)


def _report(r: Report) -> VerifyReport:
    marks = {}
    for name in ("pixels", "audio"):
        d = getattr(r, name)
        marks[name] = None if d is None else MarkReport(
            found=d.found, output_id=None if d.output_id is None else f"{d.output_id:08x}", z=round(d.z, 2)
        )  # fmt: skip
    m = r.manifest
    return VerifyReport(
        found=r.found, kind=r.kind, manifest=m.state, manifest_trusted=m.trusted, manifest_detail=m.detail, **marks
    )


def _verify(data: bytes, suffix: str, settings: Settings) -> Report:
    with tempfile.TemporaryDirectory(prefix="talker-verify-") as d:
        path = Path(d) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return verify(path, max_pixels=settings.max_image_pixels)
        finally:
            release_memory()


@router.post(
    "",
    response_model=VerifyReport,
    responses={400: {"model": Problem}, 413: {"model": Problem}, 422: {"model": Problem}},
)
async def verify_upload(
    request: Request,
    file: UploadFile = File(description="an image, video or audio file (its name's extension picks the reader)"),
    settings: Settings = Depends(get_settings),
) -> VerifyReport:
    """Look for the invisible watermark (pixels, audio) and the C2PA manifest in the upload."""
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise HTTPException(400, f"file type {suffix or '(none)'!r}: send one of {', '.join(sorted(SUFFIXES))}")
    data = await read_upload(file, settings)
    try:
        report = await in_upload_pool(request, _verify, data, suffix, settings)
    except UnreadableMedia as e:
        raise HTTPException(400, str(e).replace("upload", "the file")) from e
    return _report(report)
