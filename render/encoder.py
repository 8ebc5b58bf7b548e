"""The motion encoder: frames of a face video -> a ``MotionTrack`` relative to that person's own neutral.

Per frame, mediapipe's face mesh in its tracking mode gives 478 3-D points. The track of the chosen face
is then cleaned over time: shot cuts (a jump of the picture or of the face) split it into shots, short
face losses are bridged by interpolation, and a one-euro filter (a low-pass whose cutoff rises with
speed: steady points stay still, fast ones follow without lag) removes detector jitter.

Each shot gets its own neutral: the median of its frames' shapes after a rigid (similarity) alignment,
which defines the neutral head pose and the face frame in which everything is measured. Channels are
then read per frame from the aligned points, in inter-ocular distances (IOD), and converted with the
same gains the renderer (``render.deform``) uses, so a track that is rendered and encoded again comes
back as it was:

* head yaw / pitch / roll: the frame's rotation relative to the neutral, in the neutral face frame;
* jawOpen: the inner-lip gap over the shot's closed gap (a low percentile), 1 = 0.5 IOD;
* mouthSmile / mouthStretch / mouthPucker / mouthFunnel: the corners' shift out (or in) and up (or down)
  from the neutral, jaw-driven corner drop removed;
* eyeBlinkL/R: the lid gap against the shot's open gap; browInnerUp / browDown: the inner brows' height;
* eyeLookX / eyeLookY: the irises' offset in their eyes against the shot's median.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from motion.types import CHANNEL_INDEX, CHANNELS, MotionTrack
from render import topology as T
from render.landmarks import MediaPipeFaceMesh, NoFaceError
from render.rig import MAX_LIP_GAP_IOD, eye_centres

# points that move with the skull only (nose bridge, forehead, eye corners, temples): the rigid alignment
RIGID = sorted(set(T.NOSE_RIGID + T.FOREHEAD + [33, 133, 263, 362, 234, 454, 93, 323, 127, 356, 162, 389, 21, 251]))
_GAP_PAIRS = ((82, 87), (13, 14), (312, 317), (81, 178), (311, 402))  # inner lip pairs, as the rig measures
_R_LIDS = (T.R_EYE_UPPER[2:-2], T.R_EYE_LOWER[2:-2])
_L_LIDS = (T.L_EYE_UPPER[2:-2], T.L_EYE_LOWER[2:-2])
_BROW_INNER_R = [107, 66, 55, 65]
_BROW_INNER_L = [336, 296, 285, 295]
_C = CHANNEL_INDEX

# How far the renderer (render.deform) moves the face per unit of each channel, inverted: a movement
# measured on a real face becomes the channel value that moves a portrait as far. (On the renderer's own
# frames mediapipe reads the lip corners, brows and irises at a third to a half of how far the warp moved
# them, its mesh being pulled towards its average face, so a rendered track reads back damped in those
# channels; on real faces, where the movement is real, that damping is much smaller.)
_SMILE = (0.09 / 0.45, -0.06)  # (mouth half width per half width / 0.45, corner height) per unit mouthSmile
_STRETCH = (0.07 / 0.45, 0.015)  # ... per unit mouthStretch
_PUCKER_IN, _FUNNEL_IN = 0.22, 0.14  # share of the mouth's half width lost per unit mouthPucker / mouthFunnel
_WIDTH_PER_GAP = 0.15  # half width gained per unit of lip gap as the jaw opens (the warp and mediapipe both)
_BROW_UP, _BROW_DOWN = 0.10, 0.06  # inner brow rise per unit browInnerUp, drop per unit browDown
_BROW_PER_GAP = 0.09  # the inner brows read lower by this much per unit of lip gap (the mesh's coupling)
_GAZE_X, _GAZE_Y = 0.16, 0.10  # iris offset per unit eyeLookX / eyeLookY (eye widths)
_NARROW_MIN = 0.01  # narrowing (share of the half width) below this is the head's turn foreshortening it
_CLOSED_GAP_PCT = 5.0  # the shot's closed-mouth gap: this percentile of its lip gaps
_OPEN_EYE_PCT = 70.0  # the shot's open-eye gap: this percentile of its lid gaps
_BLINK_FLOOR = 0.2
_SQUINT, _SHUT = 0.15, 0.8  # lid closures read below the first are open eyes, above the second shut ones
"""The detector never reads a shut eye as quite shut: a lid gap at this share of the open gap is a full blink."""


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


@dataclass(frozen=True)
class Neutral:
    """One shot's neutral face: its median shape (aligned), face frame and resting measurements."""

    shape: np.ndarray  # (478, 3) pixels: the median aligned shape, in the shot's reference pose
    rotation: np.ndarray  # (3, 3): the median head rotation, reference pose -> neutral pose (camera axes)
    axes: np.ndarray  # (3, 3): face-frame axes of the neutral pose (rows x, y, z), camera coordinates
    features: dict[str, float]


@dataclass(frozen=True)
class EncodedVideo:
    """A video's motion: the track, the landmarks it was read from, and each shot's neutral."""

    track: MotionTrack
    faces: FaceTrack
    neutrals: dict[int, Neutral]


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


# --- geometry -------------------------------------------------------------------------------------


def align(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (scale s, rotation R, translation t) with s R src + t ~ dst for (P, 3) point sets."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    r = u @ fix @ vt
    s = float((sv * np.diag(fix)).sum() / max((a * a).sum(), 1e-12))
    return s, r, md - s * r @ ms


def pose_2d(ref: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) taking 3-D points ``ref`` (P, 3) to the pose whose picture is ``xy`` (P, 2), under a
    scaled orthographic camera (as the renderer projects). Only the picture's x, y are used: the
    detector's depth of a turned face is flatter than its true shape, and a 3-D fit would read the
    turn short."""
    a = ref - ref.mean(axis=0)
    b = xy - xy.mean(axis=0)
    m = np.linalg.lstsq(a, b, rcond=None)[0].T  # (2, 3): b ~ a @ m.T
    u, _, vt = np.linalg.svd(m, full_matrices=False)
    r2 = u @ vt
    return np.stack([r2[0], r2[1], np.cross(r2[0], r2[1])])


def face_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(origin, axes (3, 3) rows x y z, IOD) of the face frame of (478, 3) points, as ``build_rig``."""
    r, left = eye_centres(points)
    iod = float(np.linalg.norm((left - r)[:2]))
    origin = (r + left) / 2
    ex = (left - r) / np.linalg.norm(left - r)
    down = points[T.CHIN] - origin
    ey = down - ex * (down @ ex)
    ey /= np.linalg.norm(ey)
    return origin, np.stack([ex, ey, np.cross(ex, ey)]), iod


def euler_zxy(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of a face-frame rotation ``r`` = Rz(roll) Rx(pitch) Ry(yaw), the
    composition ``render.deform`` applies."""
    pitch = np.arcsin(np.clip(r[2, 1], -1.0, 1.0))
    yaw = np.arctan2(-r[2, 0], r[2, 2])
    roll = np.arctan2(-r[0, 1], r[1, 1])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def _rotvec_median(rs: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    rv = Rotation.from_matrix(rs).as_rotvec()
    return np.asarray(Rotation.from_rotvec(np.median(rv, axis=0)).as_matrix())


# --- measurements ---------------------------------------------------------------------------------

_FEATURES = (
    "gap",
    "corner_y",
    "half_width",
    "lid_r",
    "lid_l",
    "brow_r",
    "brow_l",
    "iris_x",
    "iris_y",
)


def measure(local: np.ndarray) -> np.ndarray:
    """Raw features (len(_FEATURES),) of face-frame points (478, 3) in IOD units."""
    y = local[:, 1]
    gap = float(np.mean([y[b] - y[a] for a, b in _GAP_PAIRS]))
    half_w = 0.5 * float(local[291, 0] - local[61, 0])
    corner_y = 0.5 * float(y[61] + y[291])
    lid_r = float(np.mean(y[list(_R_LIDS[1])] - y[list(_R_LIDS[0])]))
    lid_l = float(np.mean(y[list(_L_LIDS[1])] - y[list(_L_LIDS[0])]))
    brow_r = float(np.mean(y[_BROW_INNER_R]))
    brow_l = float(np.mean(y[_BROW_INNER_L]))
    iris = []
    for c, (a, b) in ((468, (33, 133)), (473, (362, 263))):
        mid = 0.5 * (local[a] + local[b])
        w = max(float(np.linalg.norm(local[b, :2] - local[a, :2])), 1e-3)
        iris.append((local[c, :2] - mid[:2]) / w)
    ix, iy = np.mean(iris, axis=0)
    return np.array([gap, corner_y, half_w, lid_r, lid_l, brow_r, brow_l, ix, iy], np.float64)


def _shot_neutral(points: np.ndarray) -> tuple[Neutral, np.ndarray, np.ndarray]:
    """A shot's neutral, and per frame its rotation from the neutral (N, 3, 3) and its points aligned to
    the neutral's reference pose (N, 478, 3)."""
    ref = points[len(points) // 2].astype(np.float64)
    for _ in range(2):
        aligned = np.empty_like(points, dtype=np.float64)
        rots = np.empty((len(points), 3, 3))
        for k, p in enumerate(points.astype(np.float64)):
            s, r, t = align(p[RIGID], ref[RIGID])
            aligned[k] = s * p @ r.T + t
            rots[k] = pose_2d(ref[RIGID], p[RIGID, :2])
        ref = np.median(aligned, axis=0)
    med = _rotvec_median(rots)
    centre = ref[RIGID].mean(axis=0)
    neutral_pose = (ref - centre) @ med.T + centre
    _, axes, _ = face_axes(neutral_pose)
    rel = rots @ med.T  # neutral pose -> frame pose, camera axes
    return Neutral(ref.astype(np.float32), med, axes, {}), rel, aligned


def encode_faces(faces: FaceTrack) -> EncodedVideo:
    """Channels of every frame of a face track, each shot relative to its own neutral. Frames without a
    face get the neutral (all channels 0)."""
    n = faces.n_frames
    values = np.zeros((n, len(CHANNELS)), np.float32)
    neutrals: dict[int, Neutral] = {}
    for shot in np.unique(faces.shot[faces.valid]):
        ks = np.where((faces.shot == shot) & faces.valid)[0]
        neutral, rel, aligned = _shot_neutral(faces.points[ks])
        origin, axes, iod = face_axes(neutral.shape.astype(np.float64))
        feats = np.stack([measure(((p - origin) @ axes.T) / iod) for p in aligned])
        # pose
        for j, k in enumerate(ks):
            r_local = neutral.axes @ rel[j] @ neutral.axes.T
            yaw, pitch, roll = euler_zxy(r_local)
            values[k, _C["headYaw"]] = yaw
            values[k, _C["headPitch"]] = pitch
            values[k, _C["headRoll"]] = roll
        rest = _rest(feats)
        neutrals[int(shot)] = Neutral(neutral.shape, neutral.rotation, neutral.axes, rest)
        values[ks] = _channels(feats, rest, values[ks])
    track = MotionTrack(faces.fps, values)
    return EncodedVideo(track, faces, neutrals)


def _rest(feats: np.ndarray) -> dict[str, float]:
    """The shot's resting values of each feature (closed mouth: a low percentile of the gap; open eyes:
    a high one of the lids; everything else: the median of the frames whose mouth is near closed)."""
    f = {name: feats[:, i] for i, name in enumerate(_FEATURES)}
    closed_gap = float(np.percentile(f["gap"], _CLOSED_GAP_PCT))
    near = f["gap"] <= closed_gap + 0.05
    sel = near if near.sum() >= 3 else np.ones(len(feats), bool)
    rest = {name: float(np.median(v[sel])) for name, v in f.items()}
    rest["gap"] = closed_gap
    rest["lid_r"] = float(np.percentile(f["lid_r"], _OPEN_EYE_PCT))
    rest["lid_l"] = float(np.percentile(f["lid_l"], _OPEN_EYE_PCT))
    for name in ("iris_x", "iris_y", "brow_r", "brow_l"):
        rest[name] = float(np.median(f[name]))
    return rest


def _channels(feats: np.ndarray, rest: dict[str, float], out: np.ndarray) -> np.ndarray:
    i = {name: k for k, name in enumerate(_FEATURES)}
    v = out.copy()
    gap = np.maximum(feats[:, i["gap"]] - rest["gap"], 0.0)
    v[:, _C["jawOpen"]] = gap / MAX_LIP_GAP_IOD
    # mouth corners: wider or narrower (a share of the rest width) and up or down from rest, the widening
    # of the opening jaw taken off
    hw0 = max(rest["half_width"], 1e-3)
    dw = (feats[:, i["half_width"]] - hw0 - _WIDTH_PER_GAP * gap) / hw0
    dy = feats[:, i["corner_y"]] - rest["corner_y"]
    m = np.array([[_SMILE[0], _STRETCH[0]], [_SMILE[1], _STRETCH[1]]])
    smile, stretch = np.linalg.solve(m, np.stack([dw, dy]))
    # no stretch: smile (or its opposite) alone, by least squares
    col = m[:, 0]
    smile = np.where(stretch < 0, (col[0] * dw + col[1] * dy) / float(col @ col), smile)
    stretch = np.maximum(stretch, 0.0)
    # narrower than at rest: pucker with the lips together, funnel with them apart; corners up still smile
    inward = dw < 0
    open_share = np.clip(gap / 0.15, 0.0, 1.0)
    smile = np.where(inward, np.maximum(dy / _SMILE[1], 0.0), smile)
    narrow = np.maximum(-dw - _NARROW_MIN, 0.0)
    v[:, _C["mouthSmile"]] = np.clip(smile, -1.0, 1.0)
    v[:, _C["mouthStretch"]] = np.clip(np.where(inward, 0.0, stretch), 0.0, 1.0)
    v[:, _C["mouthPucker"]] = np.clip(narrow * (1 - open_share) / _PUCKER_IN, 0.0, 1.0)
    v[:, _C["mouthFunnel"]] = np.clip(narrow * open_share / _FUNNEL_IN, 0.0, 1.0)
    # lids
    for name, ch in (("lid_r", "eyeBlinkRight"), ("lid_l", "eyeBlinkLeft")):
        share = feats[:, i[name]] / max(rest[name], 1e-3)
        closed = np.clip((1.0 - share) / (1.0 - _BLINK_FLOOR), 0.0, 1.0)
        # eyes narrowed a little (looking down, a smile) stay open; a closing lid is drawn all the way
        t = np.clip((closed - _SQUINT) / (_SHUT - _SQUINT), 0.0, 1.0)
        v[:, _C[ch]] = t * t * (3 - 2 * t)
    # brows: up is negative y
    drop = 0.5 * ((feats[:, i["brow_r"]] - rest["brow_r"]) + (feats[:, i["brow_l"]] - rest["brow_l"]))
    rise = _BROW_PER_GAP * gap - drop
    v[:, _C["browInnerUp"]] = np.clip(rise / _BROW_UP, 0.0, 1.0)
    v[:, _C["browDown"]] = np.clip(-rise / _BROW_DOWN, 0.0, 1.0)
    # gaze, held through blinks (the iris is hidden and its points drift)
    gx = (feats[:, i["iris_x"]] - rest["iris_x"]) / _GAZE_X
    gy = (feats[:, i["iris_y"]] - rest["iris_y"]) / _GAZE_Y
    shut = np.maximum(v[:, _C["eyeBlinkRight"]], v[:, _C["eyeBlinkLeft"]]) > 0.4
    for k in range(1, len(gx)):
        if shut[k]:
            gx[k], gy[k] = gx[k - 1], gy[k - 1]
    v[:, _C["eyeLookX"]] = np.clip(gx, -1.0, 1.0)
    v[:, _C["eyeLookY"]] = np.clip(gy, -1.0, 1.0)
    return v


def encode_frames(
    frames: Iterable[np.ndarray], fps: float, face_index: int | None = None, settings: EncoderSettings | None = None
) -> EncodedVideo:
    """RGB uint8 frames of a face video at ``fps`` -> its motion (``EncodedVideo``). Raises
    ``VideoFaceError`` when no frame has a face."""
    return encode_faces(track_faces(frames, fps, face_index, settings))


class LiveEncoder:
    """The encoder for a live stream: one channel row per frame pushed, using only frames seen so far.

    The neutral is estimated as the stream goes: the reference shape is the median of the first
    ``warmup_s`` of frames with a face, the rest values (closed mouth, open eyes, median pose...) come
    from the last ``window_s``. Until the first face, and after a loss longer than
    ``EncoderSettings.max_gap_s``, rows are the neutral (zeros); a shorter loss holds the last row.
    Not thread-safe."""

    def __init__(
        self,
        fps: float,
        face_index: int | None = None,
        settings: EncoderSettings | None = None,
        warmup_s: float = 1.0,
        window_s: float = 10.0,
    ) -> None:
        self.fps = fps
        self.s = settings or EncoderSettings()
        self._follower = FaceFollower(face_index, self.s.cut_pixel)
        self._filter = OneEuro(fps, self.s.min_cutoff_hz, self.s.beta)
        self._warmup = max(1, int(round(warmup_s * fps)))
        self._window = max(self._warmup, int(round(window_s * fps)))
        self._reset()
        self._last = np.zeros(len(CHANNELS), np.float32)
        self._lost = 0

    def _reset(self) -> None:
        self._filter.reset()
        self._shapes: list[np.ndarray] = []
        self._ref: np.ndarray | None = None
        self._frame: tuple[np.ndarray, np.ndarray, float] | None = None
        self._feats: list[np.ndarray] = []
        self._rotvecs: list[np.ndarray] = []

    def push(self, image: np.ndarray) -> np.ndarray:
        """The channel row (len(CHANNELS),) float32 of one RGB uint8 frame."""
        from scipy.spatial.transform import Rotation

        face, cut = self._follower.next(image)
        if cut:
            self._reset()
        if face is None:
            self._lost += 1
            if self._lost > self.s.max_gap_s * self.fps:
                self._last = np.zeros(len(CHANNELS), np.float32)
                self._reset()
            return self._last.copy()
        self._lost = 0
        p = self._filter(face.astype(np.float64), max(_iod(face), 1.0))
        if self._ref is None or len(self._shapes) < self._warmup:
            ref = p if self._ref is None else self._ref
            sc, r, t = align(p[RIGID], ref[RIGID])
            self._shapes.append(sc * p @ r.T + t)
            self._ref = np.median(np.stack(self._shapes), axis=0)
            self._frame = face_axes(self._ref)
        ref = self._ref
        assert self._frame is not None
        sc, r, t = align(p[RIGID], ref[RIGID])
        aligned = sc * p @ r.T + t
        origin, axes, iod = self._frame
        self._feats.append(measure(((aligned - origin) @ axes.T) / iod))
        rot = pose_2d(ref[RIGID], p[RIGID, :2])
        self._rotvecs.append(Rotation.from_matrix(rot).as_rotvec())
        self._feats = self._feats[-self._window :]
        self._rotvecs = self._rotvecs[-self._window :]
        med = np.asarray(Rotation.from_rotvec(np.median(np.stack(self._rotvecs), axis=0)).as_matrix())
        centre = ref[RIGID].mean(axis=0)
        _, n_axes, _ = face_axes((ref - centre) @ med.T + centre)
        row = np.zeros((1, len(CHANNELS)), np.float32)
        yaw, pitch, roll = euler_zxy(n_axes @ (rot @ med.T) @ n_axes.T)
        row[0, _C["headYaw"]], row[0, _C["headPitch"]], row[0, _C["headRoll"]] = yaw, pitch, roll
        feats = np.stack(self._feats)
        self._last = _channels(feats[-1:], _rest(feats), row)[0].astype(np.float32)
        return self._last.copy()

    def close(self) -> None:
        self._follower.close()
