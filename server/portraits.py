"""Uploaded portraits: checked (bytes, pixels, decodable) and kept as files under the data dir."""

from __future__ import annotations

import ctypes
import hashlib
import io
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talker.portrait import pil_to_rgb

DEFAULT_PORTRAIT = "default"
"""Id of the bundled public-domain portrait; always available."""

_ID_RE = re.compile(r"^[0-9a-f]{16}$")
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif"}
MIN_SIDE_PX = 32


class UploadError(ValueError):
    """An upload that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


def check_image(data: bytes, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Check an uploaded image's header without trusting its name or content type (nothing is decoded yet:
    ``prepare_upload`` decodes).

    Raises ``UploadError``: 400 empty, 413 over ``max_bytes``, 415 not an image of a supported format,
    422 over ``max_pixels`` or under 32x32.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadError(400, "the uploaded portrait is empty")
    if len(data) > max_bytes:
        raise UploadError(413, f"the uploaded portrait is {len(data)} bytes; the limit is {max_bytes} bytes")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = str(im.format or "")
            w, h = im.size
            if w * h > max_pixels:
                raise UploadError(
                    422, f"the uploaded portrait is {w}x{h} = {w * h} pixels; the limit is {max_pixels} pixels"
                )
            if min(w, h) < MIN_SIDE_PX:
                raise UploadError(422, f"the uploaded portrait is only {w}x{h} pixels; need at least 32x32")
    except UploadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise UploadError(415, f"the uploaded file is not a readable image (JPEG, PNG, WebP...): {e}") from e
    except Exception as e:  # noqa: BLE001 - a corrupt file can make PIL's decoders raise almost anything
        raise UploadError(415, f"the uploaded image could not be decoded: {type(e).__name__}: {e}") from e
    if fmt not in EXTENSIONS:
        raise UploadError(415, f"image format {fmt or 'unknown'} is not supported; use {', '.join(EXTENSIONS)}")
    return ImageInfo(fmt, w, h)


WORKING_MAX_PIXELS = 16_000_000
"""Larger uploads are scaled down to this many pixels once decoded: a face is rigged at the output size
(at most 2048 px), and a 40-megapixel picture held as RGB arrays in several copies is most of a GB."""


@dataclass(frozen=True)
class PreparedImage:
    """An upload decoded once: the upload's facts (``info``), its RGB pixels (scaled down past
    ``WORKING_MAX_PIXELS``) and the bytes to keep (the upload itself, or a PNG of the scaled-down picture)."""

    info: ImageInfo
    rgb: np.ndarray
    data: bytes
    format: str  # of ``data``
    scale: float  # kept pixels per uploaded pixel (1.0: as uploaded)


def prepare_upload(data: bytes, max_bytes: int, max_pixels: int) -> PreparedImage:
    """``check_image``'s checks (the size from the header, before decoding) and one decode, scaled down to
    a working size while still a PIL image (so the full-size picture exists once, not in several RGB
    copies). Raises ``UploadError`` like ``check_image``."""
    import cv2
    from PIL import Image, ImageOps

    info = check_image(data, max_bytes, max_pixels)
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            w, h = im.size
            factor = math.ceil(math.sqrt(w * h / WORKING_MAX_PIXELS)) if w * h > WORKING_MAX_PIXELS else 1
            small: Image.Image = im
            if factor > 1:
                if im.mode not in ("RGB", "RGBA", "L", "LA", "I", "F", "I;16"):
                    small = im.convert("RGBA" if "transparency" in im.info or "A" in im.mode else "RGB")
                small = small.reduce(factor)
            rgb = np.array(pil_to_rgb(ImageOps.exif_transpose(small)), copy=True)
            del small
    except Exception as e:  # noqa: BLE001 - a corrupt file can make PIL's decoders raise almost anything
        raise UploadError(415, f"the uploaded image could not be decoded: {type(e).__name__}: {e}") from e
    if factor == 1:
        return PreparedImage(info, rgb, data, info.format, 1.0)
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 RGB image
        raise UploadError(415, "the uploaded image could not be re-encoded")
    return PreparedImage(info, rgb, png.tobytes(), "PNG", max(rgb.shape[:2]) / max(w, h))


def release_memory() -> None:
    """Hand freed heap back to the system after a large decode (glibc keeps it in its arenas otherwise,
    so a burst of big uploads would leave the process that much bigger for good)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


class PortraitStore:
    """Portrait files under ``root``; an id is the first 16 hex digits of the file's SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._in_use: dict[str, int] = {}

    def save(self, data: bytes, info: ImageInfo, pid: str | None = None) -> str:
        """Keep an upload's file (once per content; ``pid``: the id, default from ``data``) and mark it in use
        until ``settle``."""
        pid = pid or hashlib.sha256(data).hexdigest()[:16]
        with self._lock:
            if self.path(pid) is None:
                tmp = self.root / f".{pid}.{threading.get_ident()}.part"
                tmp.write_bytes(data)
                tmp.replace(self.root / f"{pid}{EXTENSIONS[info.format]}")
            self._in_use[pid] = self._in_use.get(pid, 0) + 1
        return pid

    def settle(self, portrait_id: str, keep: Callable[[], bool]) -> None:
        """One upload of ``portrait_id`` is done; its file is deleted when no other upload of the same
        content is in progress and ``keep()`` says no one owns it (a failed upload leaves nothing)."""
        with self._lock:
            n = self._in_use.get(portrait_id, 0) - 1
            if n > 0:
                self._in_use[portrait_id] = n
                return
            self._in_use.pop(portrait_id, None)
            if not keep():
                p = self.path(portrait_id)
                if p is not None:
                    p.unlink(missing_ok=True)

    def path(self, portrait_id: str) -> Path | None:
        """The file of an uploaded portrait, or None (the default portrait has no file here)."""
        if not _ID_RE.match(portrait_id):
            return None
        for p in self.root.glob(f"{portrait_id}.*"):
            if p.is_file() and not p.name.startswith("."):
                return p
        return None

    def exists(self, portrait_id: str) -> bool:
        return portrait_id == DEFAULT_PORTRAIT or self.path(portrait_id) is not None

    def ids(self) -> list[str]:
        return sorted(p.stem for p in self.root.iterdir() if p.is_file() and _ID_RE.match(p.stem))

    def delete(self, portrait_id: str) -> bool:
        with self._lock:
            if self._in_use.get(portrait_id):
                return True  # an upload of the same picture is being rigged: it keeps the file
            p = self.path(portrait_id)
            if p is None:
                return False
            p.unlink(missing_ok=True)
            return True
