"""Loading and framing a portrait: read the image, find the face, crop and scale to the output size."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from render.frame import FrameRenderer, Renderer
from render.landmarks import IBUG_68, MEDIAPIPE_478, FaceLandmarks, LandmarkDetector, NoFaceError, pick_face
from render.rig import FaceRig

DEFAULT_SIZE = (512, 512)
"""Output frame size (width, height) when none is given."""

MAX_IMAGE_PIXELS = 40_000_000
"""Largest portrait accepted (pixels); bigger files are refused rather than decoded."""


class ImageError(ValueError):
    """The portrait file cannot be used (missing, unreadable, not an image, too large)."""


def default_portrait_path() -> Path:
    """The bundled public-domain portrait (NASA photo of astronaut Eileen Collins)."""
    return Path(str(files("talker").joinpath("assets/portrait.png")))


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3), applying its EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageError(f"portrait {p} does not exist")
    if not p.is_file():
        raise ImageError(f"portrait {p} is not a file")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ImageError(f"portrait {p} is {w}x{h} pixels; the limit is {MAX_IMAGE_PIXELS} pixels")
            rgb = pil_to_rgb(ImageOps.exif_transpose(im))
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ImageError(f"portrait {p} is not a readable image ({e})") from e
    except Exception as e:  # noqa: BLE001 - a corrupt file can make PIL's decoders raise almost anything
        raise ImageError(f"portrait {p} could not be decoded: {type(e).__name__}: {e}") from e
    if rgb.shape[0] < 32 or rgb.shape[1] < 32:
        raise ImageError(f"portrait {p} is only {rgb.shape[1]}x{rgb.shape[0]} pixels; need at least 32x32")
    return np.ascontiguousarray(rgb)


def pil_to_rgb(im: Any) -> np.ndarray:
    """A decoded PIL image as RGB uint8 (H, W, 3), as a viewer shows it.

    A transparent background shows white (the colours stored under transparent pixels are arbitrary,
    often black); 16- and 32-bit greyscale and float images are scaled to 8 bits, not clipped (a 16-bit
    scan would turn nearly white)."""
    from PIL import Image

    if im.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float32)
        top = float(a.max()) if a.size else 0.0
        if im.mode.startswith("I;16"):
            full = 65535.0
        elif im.mode == "F":
            full = 1.0 if top <= 1.0 else max(top, 1.0)
        else:
            full = 255.0 if top <= 255 else (65535.0 if top <= 65535 else top)
        grey = np.clip(a * (255.0 / full), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.asarray(im.convert("RGB"))


def parse_size(text: str) -> tuple[int, int]:
    """'512' -> (512, 512); '640x480' -> (640, 480). Dimensions must be even (H.264) and 64..4096."""
    t = text.lower().strip()
    try:
        if "x" in t:
            w_s, h_s = t.split("x", 1)
            w, h = int(w_s), int(h_s)
        else:
            w = h = int(t)
    except ValueError as e:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT or a single number") from e
    for v in (w, h):
        if not 64 <= v <= 4096:
            raise ValueError(f"size {text!r}: each side must be between 64 and 4096 pixels")
    return w - w % 2, h - h % 2


@dataclass(frozen=True)
class Avatar:
    """A portrait framed to the output size and rigged once."""

    rig: FaceRig
    source: str

    @property
    def size(self) -> tuple[int, int]:
        return self.rig.size

    def frame_renderer(self, renderer: Renderer) -> FrameRenderer:
        """The pipeline's ``renderer`` component on this portrait's rig."""
        return renderer(self.rig)


@dataclass(frozen=True)
class FramedPortrait:
    """The portrait cropped and scaled to the output size, with its face's landmarks."""

    image: np.ndarray
    face: FaceLandmarks


FRAMINGS = ("bust", "head", "source")
"""How a portrait is framed: ``bust`` head and shoulders, ``head`` closer on the face, ``source`` the whole
picture."""

# per framing: frame height in face-box heights, the same in face-box widths, eye line's height in the frame
_FRAMING = {"bust": (3.0, 2.4, 0.36), "head": (2.0, 1.6, 0.40)}
_KEEP_WHOLE = 0.96  # a crop at least this share of the whole picture's height takes the whole picture
_MAX_ZOOM = 1.5  # how much closer than asked a frame may go to keep the eyes at their height in the picture


def _eye_line(face: FaceLandmarks) -> float:
    """y (pixels) of the line through the eyes' corners."""
    x0, y0, x1, y1 = face.bbox
    corners = {MEDIAPIPE_478: [33, 133, 263, 362], IBUG_68: [36, 39, 42, 45]}.get(face.scheme)
    if corners is None or len(face.points) <= max(corners):
        return y0 + 0.4 * (y1 - y0)
    return float(face.points[corners, 1].mean())


def frame_portrait(
    image: np.ndarray, face: FaceLandmarks, size: tuple[int, int] | None, framing: str = "bust"
) -> FramedPortrait:
    """Frame the portrait to ``size`` = (width, height).

    ``bust`` and ``head`` crop around the face to the output's aspect ratio with the face at a fixed share of
    the height and the eye line at a fixed height, going up to 1.5x closer when the picture has no room to
    keep the eyes there; ``source`` keeps the whole picture, fitted inside ``size``. ``size`` None keeps
    the whole picture at its own size."""
    h, w = image.shape[:2]
    if size is None:
        if framing not in FRAMINGS:
            raise ValueError(f"framing {framing!r} is not one of {', '.join(FRAMINGS)}")
        ow, oh = w - w % 2, h - h % 2
        return FramedPortrait(np.ascontiguousarray(image[:oh, :ow]), face.transformed(1.0, 0, 0, (ow, oh)))
    left, top, sx, sy, out = framing_transform((w, h), face, size, framing)
    return _crop_scaled(image, face, left, top, sx, sy, out)


def framing_transform(
    picture: tuple[int, int], face: FaceLandmarks, size: tuple[int, int], framing: str = "bust"
) -> tuple[float, float, float, float, tuple[int, int]]:
    """How ``frame_portrait`` frames a ``picture`` = (width, height) with ``face`` in it: (left, top, x
    scale, y scale, output (width, height)); a pixel (x, y) of the picture lands at ((x - left) * sx,
    (y - top) * sy)."""
    if framing not in FRAMINGS:
        raise ValueError(f"framing {framing!r} is not one of {', '.join(FRAMINGS)}")
    w, h = picture
    if framing == "source":
        scale = min(size[0] / w, size[1] / h)
        ow, oh = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
        return 0.0, 0.0, ow / w, oh / h, (ow, oh)
    ow, oh = size
    aspect = ow / oh
    per_h, per_w, eye_at = _FRAMING[framing]
    x0, y0, x1, y1 = face.bbox
    fh = max(y1 - y0, 1.0)
    fw = max(x1 - x0, 1.0)
    cx = 0.5 * (x0 + x1)
    eye_y = _eye_line(face)
    wanted = max(per_h * fh, per_w * fw / aspect)
    # the largest crop that keeps the eye line at its height and the face centred inside the picture
    room = min(
        eye_y / eye_at,
        (h - eye_y) / (1.0 - eye_at),
        2.0 * min(cx, w - cx) / aspect,
    )
    ch = float(np.clip(room, wanted / _MAX_ZOOM, wanted))
    whole = min(h, w / aspect)
    # a picture framed already (within a few pixels) is kept whole rather than resampled
    ch = whole if ch >= _KEEP_WHOLE * whole else ch
    cw = ch * aspect
    left = float(np.clip(cx - cw / 2, 0, w - cw))
    top = float(np.clip(eye_y - eye_at * ch, 0, h - ch))
    return left, top, ow / cw, oh / ch, (ow, oh)


def _crop_scaled(
    image: np.ndarray, face: FaceLandmarks, left: float, top: float, sx: float, sy: float, out: tuple[int, int]
) -> FramedPortrait:
    """The picture from (left, top) scaled by (sx, sy) into an ``out`` = (width, height) frame."""
    m = np.array([[sx, 0, -left * sx], [0, sy, -top * sy]], np.float64)
    interp = cv2.INTER_AREA if min(sx, sy) < 1 else cv2.INTER_CUBIC
    framed = cv2.warpAffine(image, m, out, flags=interp, borderMode=cv2.BORDER_REPLICATE)
    p = face.points.copy()
    p[:, 0] = p[:, 0] * sx - left * sx
    p[:, 1] = p[:, 1] * sy - top * sy
    p[:, 2] = p[:, 2] * 0.5 * (sx + sy)
    return FramedPortrait(framed, FaceLandmarks(p.astype(np.float32), face.scheme, out))


def find_face(image: np.ndarray, detector: LandmarkDetector, source: str, index: int | None = None) -> FaceLandmarks:
    """Detect faces and pick one; raises NoFaceError naming ``source``."""
    faces = detector.detect(image)
    if not faces:
        raise NoFaceError(
            f"no face found in {source}: use a photo or painting with a clearly visible, roughly frontal face "
            "(one smaller than about a tenth of the picture's height can be missed: crop closer to it)"
        )
    return pick_face(faces, index, source)
