"""Re-render only the mouth of a video frame: a rig per frame from tracked landmarks, one mesh for all.

The expensive parts of a rig (triangulation, handles, harmonic weights) depend on the face's shape, not
on its place in the picture, so they are built once on a reference frame of the shot (``MouthRedrawer``).
Per frame, the rig takes that frame's landmarks, with the reference's outer ring and border carried
along by the similarity between the two faces, all in a crop around the face; the warp renderer then
moves the lips and jaw to the new speech's mouth channels, paints the opening, and the result is blended
into the frame with a mask that is zero above the nose and ramps up to one over the upper lip, so the
eyes, brows, forehead and everything outside the face are the frame's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from motion.types import CHANNEL_INDEX, CHANNELS
from render import topology as T
from render.landmarks import MEDIAPIPE_478, FaceLandmarks
from render.rig import (
    MAX_LIP_GAP_IOD,
    OPEN_SOURCE_GAP_IOD,
    FaceRig,
    RigError,
    _mean_colour,
    build_rig,
    eye_centres,
    snap_inner_lips,
)
from render.warp import WarpRenderer

MOUTH_CHANNELS: tuple[str, ...] = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthStretch",
    "mouthRollLower",
)
"""The channels a dub takes from the new speech; every other channel keeps the frame as it is."""

_CROP_PAD = 0.35  # the crop reaches this share of the face's size past its landmarks on every side
_GAP_PAIRS = ((82, 87), (13, 14), (312, 317), (81, 178), (311, 402))
_ANCHORS = sorted(set(T.NOSE_RIGID + T.FOREHEAD + [33, 133, 263, 362, 234, 454, 93, 323, 127, 356]))


@dataclass(frozen=True)
class _Shape:
    """What a per-frame rig shares with the reference rig."""

    tris: np.ndarray
    tri_kind: np.ndarray
    head_weight: np.ndarray
    handles: np.ndarray
    harmonic: np.ndarray
    outer: np.ndarray  # (No, 3) the reference's ring and border vertices, pixels of the reference frame
    anchors: np.ndarray  # (Na, 2) the reference's anchor landmarks, pixels


def crop_box(points: np.ndarray, size: tuple[int, int], pad: float = _CROP_PAD) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a crop around landmarks ``points`` (N, >=2) grown by ``pad`` of the face size,
    within a ``size`` = (width, height) frame."""
    x0, y0 = points[:, 0].min(), points[:, 1].min()
    x1, y1 = points[:, 0].max(), points[:, 1].max()
    m = pad * max(x1 - x0, y1 - y0)
    w, h = size
    return (
        int(max(0, np.floor(x0 - m))),
        int(max(0, np.floor(y0 - m))),
        int(min(w, np.ceil(x1 + m))),
        int(min(h, np.ceil(y1 + m))),
    )


def _similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 similarity taking 2-D points ``a`` onto ``b`` (least squares)."""
    m, _ = cv2.estimateAffinePartial2D(a.astype(np.float32), b.astype(np.float32), method=cv2.LMEDS)
    if m is None:
        raise RigError("cannot relate this frame's face to the reference face")
    return np.asarray(m, np.float64)


def lip_gap_iod(points: np.ndarray) -> float:
    """The inner-lip gap of (478, 3) landmarks in inter-ocular distances (as the rig measures it)."""
    r, left = eye_centres(points)
    iod = float(np.linalg.norm((left - r)[:2]))
    ex = (left - r)[:2] / max(iod, 1e-6)
    ey = np.array([-ex[1], ex[0]])
    return float(np.mean([(points[b, :2] - points[a, :2]) @ ey for a, b in _GAP_PAIRS]) / max(iod, 1e-6))


_BANK_MIN_GAP = 0.08  # mouths open at least this far (IOD) are kept in the bank
_BANK_WIDER = 0.03  # the bank's mouth is used where the new opening is this much wider than the frame's (IOD)
_INNER = T.LIP_INNER_UPPER + T.LIP_INNER_LOWER[::-1][1:-1]


@dataclass(frozen=True)
class MouthSample:
    """One frame's own open mouth: the pixels around it and its landmarks in them."""

    gap: float  # inner-lip gap, inter-ocular distances
    image: np.ndarray  # (h, w, 3) RGB uint8
    points: np.ndarray  # (478, 2) landmarks, pixels of ``image``


def mouth_sample(image: np.ndarray, points: np.ndarray) -> MouthSample:
    """The mouth of a frame (RGB uint8, (478, >=2) landmarks) as a ``MouthSample``."""
    lips = points[T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER, :2]
    r, left = eye_centres(points)
    pad = 0.15 * float(np.linalg.norm((left - r)[:2]))
    h, w = image.shape[:2]
    x0, y0 = int(max(0, lips[:, 0].min() - pad)), int(max(0, lips[:, 1].min() - pad))
    x1, y1 = int(min(w, lips[:, 0].max() + pad + 1)), int(min(h, lips[:, 1].max() + pad + 1))
    patch = np.ascontiguousarray(image[y0:y1, x0:x1])
    return MouthSample(lip_gap_iod(points), patch, points[:, :2].astype(np.float64) - np.array([x0, y0]))


def _bank_slot(p: np.ndarray) -> tuple[int, float] | None:
    """(step of opening, how far the face is turned) of landmarks ``p``, or None for a mouth not open
    enough for the bank."""
    gap = lip_gap_iod(p)
    if gap < _BANK_MIN_GAP:
        return None
    r, left = eye_centres(p)
    iod = float(np.linalg.norm((left - r)[:2]))
    return int(gap / 0.04), abs(float(p[T.NOSE_TIP, 0] - 0.5 * (r[0] + left[0]))) / max(iod, 1e-6)


def bank_frames(points: np.ndarray, valid: np.ndarray) -> list[int]:
    """Frames whose open mouths make a good bank: over the range of openings, the most frontal face per
    step of opening (0.04 IOD). ``points`` (N, 478, 3), ``valid`` (N,) bool."""
    best: dict[int, tuple[float, int]] = {}
    for k in np.where(valid)[0]:
        slot = _bank_slot(points[k])
        if slot is not None and (slot[0] not in best or slot[1] < best[slot[0]][0]):
            best[slot[0]] = (slot[1], int(k))
    return sorted(k for _, k in best.values())


class BankCollector:
    """Builds a ``MouthBank`` from frames as they pass (``offer``): per step of opening, the most frontal."""

    def __init__(self) -> None:
        self._best: dict[int, tuple[float, MouthSample]] = {}

    def offer(self, image: np.ndarray, points: np.ndarray) -> None:
        slot = _bank_slot(points)
        if slot is not None and (slot[0] not in self._best or slot[1] < self._best[slot[0]][0]):
            self._best[slot[0]] = (slot[1], mouth_sample(image, points))

    def bank(self) -> MouthBank:
        return MouthBank([m for _, m in self._best.values()])


class MouthBank:
    """The person's own open mouths, by opening: where a dub opens a mouth wider than the frame did, the
    interior (teeth, tongue, cavity) comes from the sample opened about as far."""

    def __init__(self, samples: list[MouthSample]) -> None:
        self.samples = sorted(samples, key=lambda m: m.gap)
        self._gaps = np.array([m.gap for m in self.samples])

    def __len__(self) -> int:
        return len(self.samples)

    def pick(self, gap: float) -> MouthSample | None:
        """The sample opened closest to ``gap`` (IOD), preferring wider ones; None when the bank is empty."""
        if not self.samples:
            return None
        cost = np.abs(self._gaps - gap) + 0.5 * np.maximum(gap - self._gaps, 0.0)
        return self.samples[int(np.argmin(cost))]

    def paint(self, out: np.ndarray, vt: np.ndarray, iod: float) -> bool:
        """Paint the interior of the opening of target vertices ``vt`` (Nv, 2) into ``out`` from the sample
        that fits; False when there is none."""
        gap = float(np.mean([vt[b, 1] - vt[a, 1] for a, b in _GAP_PAIRS])) / max(iod, 1e-6)
        sample = self.pick(gap)
        if sample is None:
            return False
        ids = [78, 308, 13, 14, 82, 87, 312, 317]
        src = sample.points[ids]
        dst = vt[ids, :2]
        a = np.column_stack([src, np.ones(len(src))])
        m = np.linalg.lstsq(a, dst, rcond=None)[0].T  # (2, 3): sample pixels -> out pixels
        poly = vt[_INNER, :2]
        h, w = out.shape[:2]
        x0, y0 = int(max(0, np.floor(poly[:, 0].min()) - 2)), int(max(0, np.floor(poly[:, 1].min()) - 2))
        x1, y1 = int(min(w, np.ceil(poly[:, 0].max()) + 3)), int(min(h, np.ceil(poly[:, 1].max()) + 3))
        if x1 - x0 < 3 or y1 - y0 < 3:
            return False
        shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0]])
        m_box = shift @ np.vstack([m, [0, 0, 1.0]])
        warped = cv2.warpAffine(sample.image, m_box, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 8).astype(np.int32)], (255,), cv2.LINE_AA, shift=3)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), max(0.5, 0.01 * iod))[..., None]
        region = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(region + alpha * (warped.astype(np.float32) - region) + 0.5, 0, 255).astype(
            np.uint8
        )
        return True


class MouthRedrawer:
    """Redraws the mouth of frames of one shot. Not thread-safe."""

    def __init__(self, reference: np.ndarray, points: np.ndarray, bank: MouthBank | None = None) -> None:
        """``reference``: an RGB uint8 frame of the shot, ``points``: its (478, 3) landmarks (pixels);
        ``bank``: the person's own open mouths, for openings wider than a frame's own."""
        self.bank = bank
        h, w = reference.shape[:2]
        x0, y0, x1, y1 = crop_box(points, (w, h))
        crop = np.ascontiguousarray(reference[y0:y1, x0:x1])
        local = points.astype(np.float64) - np.array([x0, y0, 0.0])
        rig = build_rig(crop, FaceLandmarks(local.astype(np.float32), MEDIAPIPE_478, (x1 - x0, y1 - y0)), False)
        n = rig.n_landmarks
        outer = rig.verts[n:].astype(np.float64) + np.array([x0, y0, 0.0])
        self._shape = _Shape(
            rig.tris,
            rig.tri_kind,
            rig.head_weight,
            rig.handles,
            rig.harmonic,
            outer,
            points[_ANCHORS, :2].astype(np.float64),
        )
        self._template = rig
        self._neutral = np.zeros(len(CHANNELS), np.float32)

    def frame_rig(self, image: np.ndarray, points: np.ndarray) -> tuple[FaceRig, tuple[int, int, int, int]]:
        """The rig of one frame (in a crop of it) and the crop's box (x0, y0, x1, y1) in the frame."""
        s = self._shape
        m = _similarity(s.anchors, points[_ANCHORS, :2])
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        outer = np.empty_like(s.outer)
        outer[:, :2] = s.outer[:, :2] @ m[:, :2].T + m[:, 2]
        outer[:, 2] = s.outer[:, 2] * scale
        h, w = image.shape[:2]
        x0, y0, x1, y1 = crop_box(np.concatenate([points[:, :2], outer[:, :2]]), (w, h), pad=0.0)
        # nothing above the eyes changes (the blend is zero above the nose): the crop starts at the eyes
        y0 = max(y0, min(int(np.floor(points[[33, 133, 263, 362], 1].min())), y1 - 2))
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        off = np.array([x0, y0, 0.0])
        lm = points.astype(np.float64) - off
        r, left = eye_centres(lm)
        iod = float(np.linalg.norm((left - r)[:2]))
        if iod < 8:
            raise RigError(f"the face is too small to redraw (eyes {iod:.1f} px apart; need at least 8)")
        lm = snap_inner_lips(crop, lm, iod)
        verts = np.concatenate([lm, outer - off])
        origin = (r + left) / 2
        ex = (left - r) / np.linalg.norm(left - r)
        down = lm[T.CHIN] - origin
        ey = down - ex * (down @ ex)
        ey /= np.linalg.norm(ey)
        axes = np.stack([ex, ey, np.cross(ex, ey)])
        local = ((verts - origin) @ axes.T) / iod
        gap = max(0.0, float(np.mean([local[b, 1] - local[a, 1] for a, b in _GAP_PAIRS])))
        lip_rgb = _mean_colour(
            crop,
            lm,
            T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER[::-1][1:-1],
            hole=T.LIP_INNER_UPPER + T.LIP_INNER_LOWER[::-1][1:-1],
        )
        skin_rgb = _mean_colour(crop, lm, [50, 101, 36, 205, 187, 123, 117, 118])
        rig = replace(
            self._template,
            image=crop,
            verts=verts.astype(np.float32),
            origin=origin.astype(np.float32),
            axes=axes.astype(np.float32),
            iod=iod,
            local=local.astype(np.float32),
            source_gap=gap,
            mouth_open_source=gap > OPEN_SOURCE_GAP_IOD,
            lip_rgb=lip_rgb.astype(np.float32),
            skin_rgb=skin_rgb.astype(np.float32),
            roi=(0, 0, x1 - x0, y1 - y0),
        )
        return rig, (x0, y0, x1, y1)

    def redraw(self, image: np.ndarray, points: np.ndarray, mouth: np.ndarray) -> np.ndarray:
        """``image`` (RGB uint8, not modified) with its mouth re-rendered to ``mouth``: values of
        ``MOUTH_CHANNELS`` (len 6). ``points``: the frame's (478, 3) landmarks."""
        if _already(points, mouth):
            return image.copy()
        rig, (x0, y0, x1, y1) = self.frame_rig(image, points)
        values = self._neutral.copy()
        for name, v in zip(MOUTH_CHANNELS, mouth):
            values[CHANNEL_INDEX[name]] = v
        renderer = WarpRenderer(rig, draw_eyes=False)
        drawn = renderer.render(values)
        if self.bank is not None and len(self.bank):
            vt = renderer.target_points(values)
            gap = float(np.mean([vt[b, 1] - vt[a, 1] for a, b in _GAP_PAIRS])) / rig.iod
            if gap > rig.source_gap + _BANK_WIDER:
                self.bank.paint(drawn, vt, rig.iod)
        alpha = lower_face_mask(rig)
        out = image.copy()
        rows = np.nonzero(alpha.max(axis=1) > 0)[0]
        if not len(rows):
            return out
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, 0, alpha.shape[1]
        a = alpha[r0:r1, c0:c1, None]
        region = out[y0 + r0 : y0 + r1, x0 + c0 : x0 + c1]
        mixed = region + a * (drawn[r0:r1, c0:c1].astype(np.float32) - region)
        region[:] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        return out


_SAME_GAP = 0.01  # a frame whose lip gap is this close (IOD) to the new one keeps its own mouth
_SAME_SHAPE = 0.05  # ... when the new mouth has no funnel, pucker, stretch or roll past this


def _already(points: np.ndarray, mouth: np.ndarray) -> bool:
    """Whether a frame's own mouth already is the new one (both at rest, or open alike with no lip shape)."""
    m = dict(zip(MOUTH_CHANNELS, (float(x) for x in mouth)))
    target = MAX_LIP_GAP_IOD * max(m["jawOpen"], 0.0) * (1.0 - min(max(m["mouthClose"], 0.0), 1.0))
    shape = max(abs(m[c]) for c in ("mouthFunnel", "mouthPucker", "mouthStretch", "mouthRollLower"))
    return shape < _SAME_SHAPE and abs(max(lip_gap_iod(points), 0.0) - target) < _SAME_GAP


def lower_face_mask(rig: FaceRig) -> np.ndarray:
    """(H, W) float32 weight of the redrawn pixels in a rig's crop: 0 down to the bottom of the nose, rising
    smoothly to 1 a little above the top of the upper lip (which lifts as the mouth opens)."""
    h, w = rig.image.shape[:2]
    ey = rig.axes[1, :2].astype(np.float32)
    o = rig.origin[:2]
    xs = (np.arange(w, dtype=np.float32) - o[0]) * (ey[0] / rig.iod)
    ys = (np.arange(h, dtype=np.float32) - o[1]) * (ey[1] / rig.iod)
    depth = ys[:, None] + xs[None, :]  # face-frame height, IOD units
    nose = float(rig.local[2, 1])
    lip_top = float(rig.local[0, 1]) - 0.06
    top = min(nose + 0.02, lip_top - 0.04)
    t = np.clip((depth - top) / max(lip_top - top, 1e-3), 0.0, 1.0)
    return np.asarray(t * t * (3 - 2 * t), np.float32)
