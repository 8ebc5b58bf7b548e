"""Reading video files (PyAV): what a file holds, its frames as RGB arrays, its audio as mono samples.

The one place in ``talker`` where a video container is opened; every failure becomes a ``VideoError``
that names the file and what is wrong with it. Frames come upright: a file stored turned with a display
rotation (a phone held upright films landscape pictures and marks them turned by 90 degrees) is turned
as a player shows it, and its size is the size shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAX_VIDEO_S = 600.0
"""Longest input video accepted (seconds)."""
MAX_VIDEO_PIXELS = 3840 * 2160
"""Largest frame accepted (width x height)."""
MAX_VIDEO_BYTES = 2_000_000_000
"""Largest input file accepted (bytes)."""


class VideoError(ValueError):
    """A video file cannot be used (missing, not a video, no video stream, corrupt, over the limits)."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    n_frames: int  # as the container declares it (0 when unknown)
    duration_s: float
    has_audio: bool
    rotation: int = 0  # degrees counterclockwise the stored pictures are turned to be shown (0/90/180/270)


def _open(path: Path):  # type: ignore[no-untyped-def]
    import av

    try:
        return av.open(str(path))
    except av.error.FFmpegError as e:
        raise VideoError(f"{path} is not a readable video file ({e})") from e


def probe_video(
    path: str | Path,
    max_duration_s: float = MAX_VIDEO_S,
    max_pixels: int = MAX_VIDEO_PIXELS,
    max_bytes: int = MAX_VIDEO_BYTES,
) -> VideoInfo:
    """What a video file holds; raises ``VideoError`` for a missing, unreadable, audio-only or too large one."""
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"video {p} does not exist" if not p.exists() else f"video {p} is not a file")
    size = p.stat().st_size
    if size > max_bytes:
        raise VideoError(f"video {p} is {size / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    with _open(p) as c:
        if not c.streams.video:
            what = "an audio-only file" if c.streams.audio else "no streams at all"
            raise VideoError(f"{p} has no video stream ({what}): give a video of the face")
        v = c.streams.video[0]
        w, h = int(v.codec_context.width), int(v.codec_context.height)
        rate = v.average_rate or v.guessed_rate or v.base_rate
        fps = float(rate) if rate else 0.0
        if w <= 0 or h <= 0 or fps <= 0:
            raise VideoError(f"{p}: its video stream has no usable size or frame rate ({w}x{h}, {fps} fps)")
        if fps > 120:
            raise VideoError(f"{p} runs at {fps:g} fps; at most 120 are accepted")
        if w * h > max_pixels:
            raise VideoError(f"{p} is {w}x{h}; the limit is {max_pixels} pixels per frame")
        if v.duration is not None and v.time_base is not None:
            dur = float(v.duration * v.time_base)
        elif c.duration is not None:
            dur = c.duration / 1_000_000
        else:
            dur = 0.0
        if dur > max_duration_s:
            raise VideoError(f"{p} lasts {dur:.1f} s; the limit is {max_duration_s:g} s")
        n = int(v.frames or 0) or int(round(dur * fps))
        turns = _first_turns(c, v)
        if turns % 2:
            w, h = h, w
        return VideoInfo(p, w, h, fps, n, dur, bool(c.streams.audio), 90 * turns)


def _turns(frame: Any) -> int:
    """Quarter turns counterclockwise (0-3) that show a decoded frame upright, from its display matrix."""
    try:
        degrees = float(frame.rotation or 0)
    except (AttributeError, ValueError):
        return 0
    return int(round(degrees / 90.0)) % 4


def _first_turns(c: Any, v: Any) -> int:
    """The display rotation of a stream, read from its first decodable frame (0 when none decodes here;
    reading the frames then says what is wrong)."""
    import av

    try:
        for frame in c.decode(v):
            return _turns(frame)
    except av.error.FFmpegError:
        pass
    return 0


def _at_rate(frames: Iterable[Any], step: float) -> Iterator[Any]:
    """Decoded frames at one every ``step`` seconds whatever their times (phones drop frames in low light):
    frame k is the last picture whose time comes before k + 1/2 frames from the first, repeated or
    skipped so; with no rate or no times to go by, every frame once."""
    n, t0, last_t = 0, 0.0, 0.0
    held: Any = None
    for frame in frames:
        t = frame.time
        if t is None or not step:
            yield frame
            continue
        if held is None:
            t0 = t
        while held is not None and t0 + (n + 0.5) * step < t:
            yield held
            n += 1
        held, last_t = frame, t
    while held is not None and t0 + n * step < last_t + 0.5 * step:
        yield held
        n += 1


def _decoded(path: str | Path, max_frames: int | None) -> Iterator[Any]:
    """The ``av.VideoFrame`` objects of a video, in order, at its stream's rate (``_at_rate``); decoding
    failures become ``VideoError``."""
    import av

    p = Path(path)
    n = 0
    with _open(p) as c:
        if not c.streams.video:
            raise VideoError(f"{p} has no video stream")
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        try:
            for frame in _at_rate(c.decode(stream), 1.0 / float(rate) if rate else 0.0):
                yield frame
                n += 1
                if max_frames is not None and n >= max_frames:
                    return
        except av.error.FFmpegError as e:
            raise VideoError(f"{p} is corrupt or truncated: decoding stopped after frame {n} ({e})") from e
    if n == 0:
        raise VideoError(f"{p} has a video stream but no frame could be decoded (corrupt or truncated file)")


def read_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """The frames of a video as RGB uint8 (H, W, 3), in order. A decoding failure (a corrupt or truncated
    file) raises ``VideoError`` naming the frame it stopped at."""
    for frame in _decoded(path, max_frames):
        yield _rgb(frame)


def _rgb(frame: Any) -> np.ndarray:
    """A decoded frame as upright RGB uint8."""
    rgb = frame.to_ndarray(format="rgb24")
    k = _turns(frame)
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else np.asarray(rgb)


def _turn_i420(yuv: np.ndarray, k: int) -> np.ndarray:
    """An I420 picture (H * 3 / 2, W) turned ``k`` quarter turns counterclockwise, plane by plane."""
    w = yuv.shape[1]
    h = yuv.shape[0] * 2 // 3
    y = np.rot90(yuv[:h], k)
    u, v = (np.rot90(c, k) for c in yuv[h:].reshape(2, h // 2, w // 2))
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, y.shape[1])


def _i420(frame: Any, rgb: np.ndarray | None = None) -> np.ndarray:
    import cv2

    w, h = frame.width, frame.height
    if frame.format.name == "yuv420p" and w % 2 == 0 and h % 2 == 0:
        yuv = np.asarray(frame.to_ndarray(format="yuv420p"))
        k = _turns(frame)
        return _turn_i420(yuv, k) if k else yuv
    if rgb is None:
        rgb = _rgb(frame)
    h, w = rgb.shape[:2]
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]), cv2.COLOR_RGB2YUV_I420))


def read_i420(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """The frames of a video as I420 (``Mp4Writer.write_yuv``): (H' * 3 / 2, W') uint8 with W', H' the
    frame's size made even (an odd last row or column is dropped). A 4:2:0 source's planes are copied as
    they are, without a colour conversion; failures as in ``read_frames``."""
    for frame in _decoded(path, max_frames):
        yield _i420(frame)


def read_i420_rgb(path: str | Path, max_frames: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each frame both as ``read_i420`` and as ``read_frames`` gives it (the RGB made even-sized too)."""
    for frame in _decoded(path, max_frames):
        rgb = _rgb(frame)
        h, w = rgb.shape[0] - rgb.shape[0] % 2, rgb.shape[1] - rgb.shape[1] % 2
        yield _i420(frame, rgb), np.ascontiguousarray(rgb[:h, :w])


def read_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int] | None:
    """The first audio stream of a file as mono float32 samples and their rate (resampled to
    ``sample_rate`` when given); None when the file has no audio."""
    import av

    p = Path(path)
    with _open(p) as c:
        if not c.streams.audio:
            return None
        a = c.streams.audio[0]
        rate = int(sample_rate or a.codec_context.sample_rate or 16000)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts: list[np.ndarray] = []
        try:
            for frame in c.decode(a):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            raise VideoError(f"{p}: its audio is corrupt or truncated ({e})") from e
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return samples, rate
