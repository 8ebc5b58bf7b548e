"""Following one face through a video: mediapipe's face mesh per frame, cleaned over time.

Per frame, mediapipe's face mesh in its tracking mode gives 478 3-D points. The track of the chosen face
is then cleaned: shot cuts (a jump of the picture or of the face) split it into shots, short face losses
are bridged by interpolation, and a one-euro filter (a low-pass whose cutoff rises with speed: steady
points stay still, fast ones follow without lag) removes detector jitter. ``render.encoder`` reads motion
channels from the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from render.landmarks import MediaPipeFaceMesh, NoFaceError
from render.rig import eye_centres


class VideoFaceError(NoFaceError):
    """No usable face in a video (none found, or too few frames with one)."""


@dataclass(frozen=True)
class EncoderSettings:
    """How the landmark track is cleaned up.

    ``min_cutoff_hz`` / ``beta``: the one-euro filter (cutoff = min_cutoff + beta * speed in IOD/s);
    ``max_gap_s``: face losses up to this long are bridged, longer ones leave the frames without a face;
    ``cut_jump_iod``: a face that moves this far between two frames starts a new shot, as does a picture
    that changes by ``cut_pixel`` (mean absolute difference of small grey thumbnails, 0..255)."""

    min_cutoff_hz: float = 3.0
    beta: float = 8.0
    max_gap_s: float = 0.5
    cut_jump_iod: float = 1.5
    cut_pixel: float = 40.0


@dataclass(frozen=True)
class FaceTrack:
    """Landmarks of one face over a video. ``points[k]`` (478, 3) pixels, NaN where there is no face."""

    fps: float
    size: tuple[int, int]  # (width, height) of the frames
    points: np.ndarray  # (N, 478, 3) float32, smoothed and bridged
    found: np.ndarray  # (N,) bool: the detector saw the face in this frame
    valid: np.ndarray  # (N,) bool: found, or bridged over a short loss
    shot: np.ndarray  # (N,) int32: shot number (a cut starts a new one)

    @property
    def n_frames(self) -> int:
        return int(self.points.shape[0])


# --- tracking -------------------------------------------------------------------------------------


class VideoFaceMesh:
    """mediapipe's face mesh in tracking mode: each frame's search starts from the last frame's face."""

    def __init__(self, max_faces: int = 1, min_confidence: float = 0.5) -> None:
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as e:  # pragma: no cover - install problem
            raise RuntimeError("mediapipe is not installed: pip install mediapipe==0.10.21") from e
        self._mesh: Any = face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=0.5,
        )

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """(478, 3) pixel points of each face in an RGB uint8 frame."""
        h, w = image.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(image))
        return [
            np.array([(p.x * w, p.y * h, p.z * w) for p in lms.landmark], np.float32)
            for lms in result.multi_face_landmarks or []
        ]

    def close(self) -> None:
        self._mesh.close()


def _thumb(image: np.ndarray) -> np.ndarray:
    """A 32x18 grey thumbnail of a frame (from every few pixels: a cut changes the whole picture)."""
    import cv2

    step = max(1, min(image.shape[0] // 144, image.shape[1] // 256))
    g = cv2.cvtColor(np.ascontiguousarray(image[::step, ::step]), cv2.COLOR_RGB2GRAY)
    return np.asarray(cv2.resize(g, (32, 18), interpolation=cv2.INTER_AREA), np.float32)


def _iod(points: np.ndarray) -> float:
    r, left = eye_centres(points)
    return float(np.linalg.norm((left - r)[:2]))


def _choose(faces: list[np.ndarray], prev: np.ndarray | None, face_index: int | None) -> np.ndarray | None:
    """The tracked face: the one nearest the last frame's (within half an IOD), else by size / index."""
    if not faces:
        return None
    if prev is not None:
        c0 = prev[:, :2].mean(axis=0)
        dist = [float(np.linalg.norm(f[:, :2].mean(axis=0) - c0)) for f in faces]
        k = int(np.argmin(dist))
        if dist[k] < 0.5 * _iod(prev):
            return faces[k]
        return None
    if face_index is None:
        return max(faces, key=lambda f: float(np.ptp(f[:, 0]) * np.ptp(f[:, 1])))
    ordered = sorted(faces, key=lambda f: float(f[:, 0].min()))
    return ordered[face_index] if face_index < len(ordered) else None


class FaceFollower:
    """Follows one face from frame to frame: its raw landmarks per frame and whether the picture cut.

    The first frame with a face is searched with mediapipe's still-image detector (which also finds small
    faces); it decides how many faces are tracked and which one is chosen (the largest, or ``face_index``
    left to right). Later frames keep the face nearest the last one."""

    def __init__(self, face_index: int | None = None, cut_pixel: float = EncoderSettings.cut_pixel) -> None:
        self.face_index = face_index
        self.cut_pixel = cut_pixel
        self._probe: MediaPipeFaceMesh | None = MediaPipeFaceMesh()
        self._mesh: VideoFaceMesh | None = None
        self._thumb: np.ndarray | None = None
        self._prev: np.ndarray | None = None

    def next(self, image: np.ndarray) -> tuple[np.ndarray | None, bool]:
        """(the face's (478, 3) points or None, whether the picture cut since the last frame)."""
        th = _thumb(image)
        cut = self._thumb is not None and float(np.abs(th - self._thumb).mean()) > self.cut_pixel
        self._thumb = th
        if self._mesh is None:
            assert self._probe is not None
            faces = [f.points for f in self._probe.detect(image)]
            if faces:
                n = len(faces)
                if self.face_index is not None and self.face_index >= n:
                    raise VideoFaceError(
                        f"face index {self.face_index} requested but the video's first frame with a face has "
                        f"{n} face(s) (0-based, left to right)"
                    )
                self._mesh = VideoFaceMesh(max_faces=min(4, max(n, (self.face_index or 0) + 1)))
                faces = self._mesh.detect(image) or faces
                self._probe.close()
                self._probe = None
        else:
            faces = self._mesh.detect(image)
        if cut:
            self._prev = None
        face = _choose(faces, self._prev, self.face_index)
        if face is None and self._prev is not None and len(faces) == 1 and self.face_index is None:
            face = faces[0]  # the one face moved fast: keep it (the jump marks a cut)
        if face is not None:
            self._prev = face
        return face, cut

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
        if self._mesh is not None:
            self._mesh.close()


def detect_track(
    frames: Iterable[np.ndarray],
    face_index: int | None = None,
    cut_pixel: float = EncoderSettings.cut_pixel,
    on_face: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Raw landmarks of the chosen face per frame (``FaceFollower``): (points (N, 478, 3) NaN where lost,
    found (N,), picture cuts (N,) bool, frame size). ``on_face(image, points)`` sees every frame with a
    face as it passes (so a caller can keep what it needs of the pixels without decoding again)."""
    follower = FaceFollower(face_index, cut_pixel)
    pts: list[np.ndarray] = []
    found: list[bool] = []
    cuts: list[bool] = []
    size = (0, 0)
    nan = np.full((478, 3), np.nan, np.float32)
    try:
        for image in frames:
            size = (int(image.shape[1]), int(image.shape[0]))
            face, cut = follower.next(image)
            if face is not None and on_face is not None:
                on_face(image, face)
            cuts.append(cut)
            found.append(face is not None)
            pts.append(face if face is not None else nan)
    finally:
        follower.close()
    if not pts:
        raise VideoFaceError("the video has no frames")
    return np.stack(pts).astype(np.float32), np.array(found), np.array(cuts), size


class OneEuro:
    """One-euro filter over arrays of points (Casiez et al. 2012), causal: no look-ahead, so no lag at
    rest; the cutoff rises with each point's speed so fast moves are followed."""

    def __init__(self, fps: float, min_cutoff_hz: float, beta: float, d_cutoff_hz: float = 1.0) -> None:
        self.dt = 1.0 / fps
        self.min_cutoff = min_cutoff_hz
        self.beta = beta
        self.d_cutoff = d_cutoff_hz
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * np.pi * np.asarray(cutoff))
        return 1.0 / (1.0 + tau / self.dt)

    def reset(self) -> None:
        self.x = self.dx = None

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Filter one sample ``x`` (P, D); ``scale`` divides speeds (pixels -> IOD)."""
        if self.x is None or self.dx is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self.x) / self.dt
        self.dx = self.dx + self._alpha(self.d_cutoff) * (dx - self.dx)
        speed = np.linalg.norm(self.dx, axis=-1, keepdims=True) / scale
        a = self._alpha(self.min_cutoff + self.beta * speed)
        self.x = self.x + a * (x - self.x)
        return self.x.copy()


def clean_track(
    raw: np.ndarray, found: np.ndarray, cuts: np.ndarray, fps: float, size: tuple[int, int], s: EncoderSettings
) -> FaceTrack:
    """Shots, bridged losses and one-euro smoothing of raw per-frame landmarks (``detect_track``)."""
    n = len(raw)
    shot = np.zeros(n, np.int32)
    cur = 0
    last: int | None = None
    for k in range(n):
        if cuts[k] and k:
            cur += 1
        if found[k] and last is not None and shot[last] == cur:
            jump = float(np.nanmedian(np.linalg.norm(raw[k, :, :2] - raw[last, :, :2], axis=1)))
            if jump > s.cut_jump_iod * _iod(raw[last]) * max(1, k - last):
                cur += 1
        shot[k] = cur
        if found[k]:
            last = k
    pts = raw.copy()
    valid = found.copy()
    max_gap = int(round(s.max_gap_s * fps))
    idx = np.where(found)[0]
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1 and shot[a] == shot[b]:
            t = (np.arange(a + 1, b) - a) / (b - a)
            pts[a + 1 : b] = raw[a][None] * (1 - t[:, None, None]) + raw[b][None] * t[:, None, None]
            valid[a + 1 : b] = True
            shot[a + 1 : b] = shot[a]
    f = OneEuro(fps, s.min_cutoff_hz, s.beta)
    prev_shot = -1
    for k in range(n):
        if not valid[k]:
            f.reset()
            continue
        if shot[k] != prev_shot:
            f.reset()
            prev_shot = int(shot[k])
        pts[k] = f(pts[k].astype(np.float64), max(_iod(pts[k]), 1.0))
    return FaceTrack(fps, size, pts.astype(np.float32), found, valid, shot)


def track_faces(
    frames: Iterable[np.ndarray],
    fps: float,
    face_index: int | None = None,
    settings: EncoderSettings | None = None,
    on_face: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> FaceTrack:
    """Landmarks of one face through a video (an iterable of RGB uint8 frames at ``fps``); ``on_face`` as
    in ``detect_track``."""
    s = settings or EncoderSettings()
    raw, found, cuts, size = detect_track(frames, face_index, s.cut_pixel, on_face)
    if not found.any():
        where = "" if face_index is None else f" (face index {face_index})"
        raise VideoFaceError(f"no face found in any of the video's {len(found)} frames{where}")
    return clean_track(raw, found, cuts, fps, size, s)
