"""Provenance: every output is marked as synthetic, and ``talker verify`` finds the marks.

Three marks, each found without the others:

* an invisible pattern in the pixels of every frame (``render.watermark``), carrying a 64-bit payload
  (talker tag, a random id per output, CRC);
* an inaudible spread-spectrum pattern in the speech audio (``audio.watermark``), same payload;
* a C2PA manifest in every MP4 (``trainedAlgorithmicMedia``, the software version), signed with the
  deployer's certificate (``TALKER_C2PA_CERT`` chain + ``TALKER_C2PA_KEY``) or, without one, with a
  certificate issued at first use by a local CA kept in the data folder.

The C2PA manifest is signed and read in ``talker.c2pa``. ``TALKER_PROVENANCE=off`` turns every mark off
(see docs/provenance.md for what that means).
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from audio.watermark import AudioMarker, Detection, detect_audio, new_output_id
from render.watermark import PixelDetector, PixelMarker
from talker.c2pa import (
    ENV_CERT,
    ENV_KEY,
    MIME,
    SOURCE_TYPE,
    Manifest,
    read_manifest,
    sign_mp4,
    signing_credentials,
)

log = logging.getLogger(__name__)

__all__ = [
    "ENV_CERT", "ENV_KEY", "ENV_PROVENANCE", "IMAGE_EXTS", "MIME", "SOURCE_TYPE", "VERIFY_MAX_S", "Label", "Manifest",
    "Marker", "Report", "UnreadableMedia", "marks_enabled", "read_audio", "read_manifest", "sign_mp4",
    "signing_credentials", "verify",
]  # fmt: skip

ENV_PROVENANCE = "TALKER_PROVENANCE"  # "off" disables every mark
VERIFY_MAX_S = 20.0  # seconds of video and audio read by ``verify``
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


class UnreadableMedia(ValueError):
    """The file is no image, video or audio that can be decoded."""


def marks_enabled() -> bool:
    """False only when the deployer set ``TALKER_PROVENANCE=off``."""
    return os.environ.get(ENV_PROVENANCE, "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass
class Marker:
    """The marks of one output: pixels and audio share one random id."""

    output_id: int = field(default_factory=new_output_id)

    def __post_init__(self) -> None:
        self.pixels = PixelMarker(self.output_id)
        self._audio: AudioMarker | None = None

    def audio(self, samples: np.ndarray, sample_rate: int, start: int | None = None) -> np.ndarray:
        """The next chunk of this output's audio (float32), marked; ``start``: its first sample's
        index in the output when chunks are not contiguous."""
        if self._audio is None or self._audio.sample_rate != sample_rate:
            self._audio = AudioMarker(self.output_id, sample_rate)
        return self._audio(samples, start)


class Label:
    """A visible disclosure (e.g. "AI-generated") drawn in the bottom-left corner of every frame:
    light text on a dark box, scaled to the frame, drawn once per frame size."""

    def __init__(self, text: str) -> None:
        text = " ".join(text.split())
        if not text or len(text) > 80 or not text.isascii():
            raise ValueError(f"label {text!r}: give 1-80 printable ASCII characters")
        self.text = text
        self._cache: dict[tuple[int, ...], tuple[tuple[slice, slice], np.ndarray]] = {}

    def _patch(self, shape: tuple[int, ...]) -> tuple[tuple[slice, slice], np.ndarray]:
        import cv2

        got = self._cache.get(shape)
        if got is None:
            h, w = shape[:2]
            scale = max(0.35, min(h, w) / 900)
            thick = max(1, round(scale * 2))
            (tw, th), base = cv2.getTextSize(self.text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            pad = max(3, th // 3)
            bw, bh = min(w, tw + 2 * pad), min(h, th + base + 2 * pad)
            box = np.full((bh, bw), 24, np.uint8)
            cv2.putText(box, self.text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (235,), thick, cv2.LINE_AA)
            where = (slice(h - bh - pad, h - pad), slice(pad, pad + bw))
            if len(shape) == 3:
                box = np.repeat(box[:, :, None], shape[2], axis=2)
            got = (where, box)
            self._cache[shape] = got
        return got

    def draw(self, image: np.ndarray) -> np.ndarray:
        """``image`` (H x W luma or H x W x 3, uint8) with the label drawn on it, in place."""
        where, box = self._patch(image.shape)
        image[where] = box
        return image


# ---------------------------------------------------------------- verify


@dataclass
class Report:
    """What ``verify`` found in one file; ``found`` when any mark is there."""

    path: str
    kind: Literal["video", "image", "audio"]
    pixels: Detection | None
    audio: Detection | None
    manifest: Manifest

    @property
    def found(self) -> bool:
        marks = [d for d in (self.pixels, self.audio) if d is not None]
        return any(d.found for d in marks) or self.manifest.state != "absent"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("pixels", "audio"):
            d = getattr(self, k)
            if d is not None:
                out[k]["output_id"] = None if d.output_id is None else f"{d.output_id:08x}"
        out["found"] = self.found
        return out


def verify(path: str | Path, max_s: float = VERIFY_MAX_S, max_pixels: int | None = None) -> Report:
    """Look for every mark in an image, video or audio file (the first ``max_s`` seconds).

    Raises ``UnreadableMedia`` when the file cannot be decoded or its frames have more than
    ``max_pixels`` pixels."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableMedia(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_EXTS:
        grey = _read_image(path, max_pixels)
        det = PixelDetector()
        det.add(grey)
        return Report(str(path), "image", det.result(), None, read_manifest(path))
    pixels, audio = _read_av(path, max_s, max_pixels)
    return Report(str(path), "video" if pixels is not None else "audio", pixels, audio, read_manifest(path))


def _read_image(path: Path, max_pixels: int | None) -> np.ndarray:
    import cv2

    if max_pixels is not None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                w, h = im.size
        except (UnidentifiedImageError, OSError) as e:
            raise UnreadableMedia(f"{path.name}: not an image that can be read") from e
        _check_size(w, h, max_pixels)
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise UnreadableMedia(f"{path}: not an image that can be read")
    return img


def _check_size(w: int, h: int, max_pixels: int | None) -> None:
    if max_pixels is not None and w * h > max_pixels:
        raise UnreadableMedia(f"{w}x{h} frames are over the limit of {max_pixels} pixels")


def _read_av(path: Path, max_s: float, max_pixels: int | None) -> tuple[Detection | None, Detection | None]:
    import av

    try:
        c = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise UnreadableMedia(f"{path}: not a video or audio file that can be read ({e})") from e
    with c:
        if not c.streams.video and not c.streams.audio:
            raise UnreadableMedia(f"{path}: no video or audio stream")
        pixels = audio = None
        try:
            if c.streams.video:
                v = c.streams.video[0].codec_context
                _check_size(v.width, v.height, max_pixels)
                c.streams.video[0].thread_type = "AUTO"  # frame-parallel decoding
                det = PixelDetector()
                for f in c.decode(video=0):
                    det.add(_luma(f))
                    if f.time is not None and f.time >= max_s:
                        break
                if det.frames:
                    pixels = det.result()
            has_audio = bool(c.streams.audio)
        except av.FFmpegError as e:
            raise UnreadableMedia(f"{path}: cannot decode ({e})") from e
    if has_audio:
        try:
            with av.open(str(path)) as c:
                x, sr = _decode_audio(c, max_s)
            audio = detect_audio(x, sr) if len(x) else None
        except av.FFmpegError as e:
            raise UnreadableMedia(f"{path}: cannot decode ({e})") from e
    if pixels is None and audio is None:
        raise UnreadableMedia(f"{path}: no frame or sample could be decoded")
    return pixels, audio


def _luma(frame: Any) -> np.ndarray:
    """A decoded frame's luma (H x W uint8): the Y plane itself for YUV frames, no conversion."""
    if frame.format.name.startswith(("yuv", "yuvj", "nv12", "gray")):
        y = frame.planes[0]
        return np.frombuffer(memoryview(y), np.uint8).reshape(-1, y.line_size)[: frame.height, : frame.width]
    return np.asarray(frame.to_ndarray(format="gray"))


def _decode_audio(c: Any, max_s: float) -> tuple[np.ndarray, int]:
    """The first audio stream of an open container as mono float32, up to ``max_s`` seconds."""
    import av

    stream = c.streams.audio[0]
    sr = int(stream.rate or stream.codec_context.sample_rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
    parts: list[np.ndarray] = []
    n = 0
    for frame in c.decode(stream):
        for out in resampler.resample(frame):
            a = out.to_ndarray().reshape(-1)
            parts.append(a)
            n += len(a)
        if n >= max_s * sr:
            break
    return (np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)), sr


def read_audio(data: bytes | str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate from an audio file (path or bytes)."""
    import av

    src: Any = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        with av.open(src) as c:
            if not c.streams.audio:
                raise UnreadableMedia("no audio stream")
            return _decode_audio(c, float("inf"))
    except av.FFmpegError as e:
        raise UnreadableMedia(f"cannot decode audio ({e})") from e
