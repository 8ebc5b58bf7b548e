"""The motion encoder: frames of a face video -> a ``MotionTrack`` relative to that person's own neutral.

The face's landmarks come from ``render.face_track`` (mediapipe's mesh per frame; shots, bridged losses,
one-euro smoothing).

Each shot gets its own neutral: the median of its frames' shapes after a rigid (similarity) alignment,
which defines the neutral head pose and the face frame in which everything is measured. Channels are
then read per frame from the aligned points, in inter-ocular distances (IOD), and converted with the
same gains the renderer (``render.deform``) uses, so a track that is rendered and encoded again comes
back as it was:

* head yaw / pitch / roll: the frame's rotation relative to the neutral, in the neutral face frame, fitted
  to the picture of the skull's rigid points (``render.head_pose``);
* jawOpen: the inner-lip gap over the shot's closed gap (a low percentile), 1 = 0.5 IOD;
* mouthSmile / mouthStretch / mouthPucker / mouthFunnel: the corners' shift out (or in) and up (or down)
  from the neutral, jaw-driven corner drop removed;
* eyeBlinkL/R, eyeWideL/R: the lid gap against the shot's open gap (narrower: a blink; wider: widened);
  browInnerUp / browDown: the inner brows' height;
* eyeLookX / eyeLookY: the irises' offset in their eyes against the shot's median.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from motion.types import CHANNEL_INDEX, CHANNELS, MotionTrack
from render import topology as T
from render.deform import WIDE
from render.face_track import (
    EncoderSettings,
    FaceFollower,
    FaceTrack,
    OneEuro,
    VideoFaceError,
    _iod,
    track_faces,
)
from render.head_pose import HeadPose
from render.rig import MAX_LIP_GAP_IOD, eye_centres

__all__ = [
    "EncodedVideo",
    "EncoderSettings",
    "FaceTrack",
    "LiveEncoder",
    "Neutral",
    "VideoFaceError",
    "encode_faces",
    "encode_frames",
    "track_faces",
]

# points that move with the skull only (nose bridge, forehead, eye corners, temples): the rigid alignment in
# which expressions are measured (the head's rotation is fitted on its own set, ``render.head_pose``)
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
_WIDE_MIN = 0.03  # lid gaps this share above the open eye's are still the open eye (the reading's jitter)
_WIDE_READ = 0.5  # share of a lid's rise the mesh reads (filmed faces; on the renderer's own frames 0.37)
_SHUT = 0.8  # lid closures read above this share of a blink are shut eyes
"""The detector never reads a shut eye as quite shut: a lid gap at this share of the open gap is a full blink."""


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
        for k, p in enumerate(points.astype(np.float64)):
            s, r, t = align(p[RIGID], ref[RIGID])
            aligned[k] = s * p @ r.T + t
        ref = np.median(aligned, axis=0)
    pose = HeadPose(ref)
    rots = np.stack([pose(p[:, :2]) for p in points])
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
    for name, ch, wide in (("lid_r", "eyeBlinkRight", "eyeWideRight"), ("lid_l", "eyeBlinkLeft", "eyeWideLeft")):
        share = feats[:, i[name]] / max(rest[name], 1e-3)
        closed = np.clip((1.0 - share) / (1.0 - _BLINK_FLOOR), 0.0, 1.0)
        # a narrowing eye (looking down, a smile) lowers the lids with it; a closing lid is drawn all the way
        t = np.clip(closed / _SHUT, 0.0, 1.0)
        v[:, _C[ch]] = t * t * (3 - 2 * t)
        # lids opened past the open eye's gap widen the eye
        v[:, _C[wide]] = np.clip((share - 1.0 - _WIDE_MIN) / (_WIDE_READ * WIDE), 0.0, 1.0)
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
        self._pose: HeadPose | None = None
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
            self._pose = HeadPose(self._ref)
        ref = self._ref
        assert self._frame is not None and self._pose is not None
        sc, r, t = align(p[RIGID], ref[RIGID])
        aligned = sc * p @ r.T + t
        origin, axes, iod = self._frame
        self._feats.append(measure(((aligned - origin) @ axes.T) / iod))
        rot = self._pose(p[:, :2])
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
