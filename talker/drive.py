"""Reenactment: a portrait performs the motion of a driving video (head, blinks, gaze, brows, mouth).

The driving video is encoded into a ``MotionTrack`` relative to its own person's neutral
(``render.encoder``), so it carries motion and not that person's face; the portrait's rig renders it
and the driver's audio is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motion.types import CHANNEL_INDEX, MotionTrack
from render.encoder import LiveEncoder, encode_frames
from render.frame import Frame
from render.warp import WarpRenderer
from talker.dub import prefetch
from talker.mp4 import frame_audio, mp4_output
from talker.pipeline import Avatar, Pipeline
from talker.video import probe_video, read_audio, read_frames

_SILENT_RATE = 16000

RETARGET_LIMITS: dict[str, float] = {
    "headYaw": 10.0,
    "headPitch": 8.0,
    "headRoll": 10.0,
    "jawOpen": 0.7,
    "mouthSmile": 0.6,
    "mouthStretch": 0.6,
    "mouthPucker": 0.6,
    "mouthFunnel": 0.6,
    "browInnerUp": 0.5,
    "browDown": 0.5,
    "eyeLookX": 0.6,
    "eyeLookY": 0.6,
    "eyeWideLeft": 0.8,
    "eyeWideRight": 0.8,
}
"""How far a portrait follows each channel of a driver (degrees for the head, channel units otherwise):
a driver's motion is passed on unchanged while small and eased towards this limit as it grows (``retarget``).
The warp moves a still portrait's pixels; past about 15 degrees of turn, or at a full-strength expression,
the face it draws drifts from the portrait's own identity. Blinks are passed on as they are."""


_KEEP_OPEN = 0.5
"""A portrait whose own mouth is open keeps this share of its opening when the driver's mouth is shut."""


def retarget(values: np.ndarray, rest_jaw: float = 0.0, limits: dict[str, float] | None = None) -> np.ndarray:
    """Channel rows (N, len(CHANNELS)) of a driver eased into the range a portrait renders as itself.

    The jaw is relative to the portrait's own opening ``rest_jaw`` (``jawOpen`` units): the driver's shut
    mouth leaves the portrait's mouth at ``_KEEP_OPEN`` of its own opening, and the driver's opening adds
    to that (a smiling portrait shut tight no longer looks like itself). Then each limited channel becomes
    ``limit * tanh(value / limit)``: the same for small values, monotonic, never past the limit."""
    out = np.array(values, np.float32, copy=True)
    base = _KEEP_OPEN * float(np.clip(rest_jaw, 0.0, 1.0))
    jaw = out[..., CHANNEL_INDEX["jawOpen"]]
    out[..., CHANNEL_INDEX["jawOpen"]] = base + np.clip(jaw, 0.0, None) * (1.0 - base)
    for name, lim in (RETARGET_LIMITS if limits is None else limits).items():
        c = CHANNEL_INDEX[name]
        out[..., c] = lim * np.tanh(out[..., c] / lim)
    return out


@dataclass
class DriveResult:
    path: Path
    n_frames: int
    fps: float
    duration_s: float
    track: MotionTrack  # the motion the portrait performed: the driver's, ``retarget``-ed
    face_share: float  # share of driving frames in which a face was tracked
    timings_s: dict[str, float] = field(default_factory=dict)


def drive_portrait(
    face: str | Path | np.ndarray | None,
    video: str | Path,
    out: str | Path,
    size: tuple[int, int] | None = (512, 512),
    face_index: int | None = None,
    pipeline: Pipeline | None = None,
    crf: int = 20,
    preset: str = "superfast",
    progress: Callable[[int, int], None] | None = None,
) -> DriveResult:
    """Render ``face`` (a portrait; None: the bundled one) performing the face in ``video`` into an MP4 at
    the video's frame rate, with the video's audio (silence when it has none). ``face_index`` picks the
    driving face when the video shows several."""
    timings: dict[str, float] = {}
    info = probe_video(video)
    t0 = time.perf_counter()
    encoded = encode_frames(prefetch(read_frames(info.path)), info.fps, face_index)
    timings["encode_motion"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    avatar = (pipeline or Pipeline()).prepare_avatar(face, size)
    renderer = WarpRenderer(avatar.rig)
    timings["face"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    audio = read_audio(info.path)
    samples, sr = audio if audio is not None else (np.zeros(0, np.float32), _SILENT_RATE)
    timings["audio"] = time.perf_counter() - t0
    track = MotionTrack(encoded.track.fps, retarget(encoded.track.values, _own_jaw(renderer)))
    n = track.n_frames
    want = int(round(n * sr / info.fps))
    samples = np.concatenate([samples[:want], np.zeros(max(0, want - len(samples)), np.float32)])
    w, h = avatar.size
    t_render = t_encode = 0.0
    with mp4_output(out, w, h, info.fps, sr, crf=crf, preset=preset) as sink:
        for k in range(n):
            t0 = time.perf_counter()
            image = renderer.render(track.values[k])
            t_render += time.perf_counter() - t0
            t0 = time.perf_counter()
            sink.put(frame_audio(samples, k, sr, info.fps), image)
            t_encode += time.perf_counter() - t0
            if progress is not None:
                progress(k + 1, n)
    # encoding runs beside the rendering: its figure is the time the rendering waited for it
    timings.update(render=t_render, encode=t_encode)
    share = float(encoded.faces.valid.mean())
    return DriveResult(Path(out), n, info.fps, n / info.fps, track, share, timings)


def _own_jaw(renderer: WarpRenderer) -> float:
    """The portrait's own mouth opening, in ``jawOpen`` units."""
    return float(renderer.neutral_values()[CHANNEL_INDEX["jawOpen"]])


class LiveDriver:
    """The live variant: driving frames in (a camera, a stream), frames of the portrait out, one for one.

    The motion is read causally (``LiveEncoder``), so the first frames move less while the driver's
    neutral settles (about a second). Not thread-safe: one per stream."""

    def __init__(self, avatar: Avatar, fps: float, face_index: int | None = None) -> None:
        self.encoder = LiveEncoder(fps, face_index)
        self.renderer = WarpRenderer(avatar.rig)
        self._rest_jaw = _own_jaw(self.renderer)
        self._k = 0

    def push(self, image: np.ndarray) -> Frame:
        """The portrait's frame for one driving frame (RGB uint8)."""
        values = retarget(self.encoder.push(image), self._rest_jaw)
        frame = Frame(self._k, self.renderer.render(values))
        self._k += 1
        return frame

    def close(self) -> None:
        self.encoder.close()
