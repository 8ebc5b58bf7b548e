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
from render.encoder import face_axes
from render.landmarks import MEDIAPIPE_478, FaceLandmarks
from render.lips import chin_under_lips, depths_under_lip
from render.mouth_bank import BANK_WIDER, GAP_PAIRS, INNER, MouthBank, eye_axis, lip_gap_iod, lip_gaps_iod
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


class MouthRedrawer:
    """Redraws the mouth of frames of one shot. Not thread-safe."""

    def __init__(
        self,
        reference: np.ndarray,
        points: np.ndarray,
        bank: MouthBank | None = None,
        rest: np.ndarray | None = None,
    ) -> None:
        """``reference``: an RGB uint8 frame of the shot, ``points``: its (478, 3) landmarks (pixels);
        ``bank``: the person's own open mouths, for openings wider than a frame's own; ``rest``: the
        (478, 3) landmarks of a frame of the shot with the lips together (``closed_frame``), whose mouth
        shape closing an open mouth returns to."""
        self.bank = bank
        self._rest: np.ndarray | None = None
        self._chin: np.ndarray | None = None  # the chin's depths under the lower lip with the lips together
        if rest is not None:
            self._chin = depths_under_lip(rest)
            o, ax, iod = face_frame(rest.astype(np.float64))
            loc = ((rest.astype(np.float64) - o) @ ax.T) / iod
            self._rest = np.stack([loc[c] for c in _CONTOURS]).astype(np.float64)
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
        self._moving = _moving_vertices(rig)

    def region(self, points: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the part of a ``size`` = (width, height) frame that redrawing the face with
        landmarks ``points`` (478, 3) reads and writes, its corners on even pixels (for 4:2:0 chroma)."""
        _, box = self._outer(points, size)
        return box

    def _carried(self, points: np.ndarray) -> np.ndarray:
        """The reference's outer ring and border carried onto this frame's face (pixels)."""
        s = self._shape
        m = _similarity(s.anchors, points[_ANCHORS, :2])
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        outer = np.empty_like(s.outer)
        outer[:, :2] = s.outer[:, :2] @ m[:, :2].T + m[:, 2]
        outer[:, 2] = s.outer[:, 2] * scale
        return outer

    def _outer(self, points: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """The carried outer ring and the frame's region."""
        outer = self._carried(points)
        w, h = size
        # the vertices of every triangle the mouth channels can move: outside them the warp is the
        # identity, so the crop ends there (grown by how far the chin can travel)
        verts = np.concatenate([points[:, :2], outer[:, :2]])[self._moving]
        r, left = eye_centres(points)
        iod = float(np.linalg.norm((left - r)[:2]))
        x0, y0, x1, y1 = crop_box(verts, (w, h), pad=0.0)
        m = int(np.ceil(_REACH * iod))
        x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
        # nothing above the nose changes (the blend is zero there): the crop starts a little above it,
        # far enough that the warp there reads only pixels inside the crop
        top = int(np.floor(min(points[[T.NOSE_TIP, 2, 98, 327], 1].min(), points[[61, 291], 1].min()) - _TOP_PAD * iod))
        y0 = max(y0, min(top, y1 - 2))
        x0, y0 = x0 - x0 % 2, y0 - y0 % 2
        x1, y1 = min(w - w % 2, x1 + x1 % 2), min(h - h % 2, y1 + y1 % 2)
        return outer, (x0, y0, max(x1, x0 + 2), max(y1, y0 + 2))

    def frame_rig(self, image: np.ndarray, points: np.ndarray) -> tuple[FaceRig, tuple[int, int, int, int]]:
        """The rig of one frame (in a crop of it) and the crop's box (x0, y0, x1, y1) in the frame."""
        h, w = image.shape[:2]
        outer, box = self._outer(points, (w, h))
        x0, y0, x1, y1 = box
        return self._crop_rig(np.ascontiguousarray(image[y0:y1, x0:x1]), box, points, outer), box

    def _crop_rig(
        self,
        crop: np.ndarray,
        box: tuple[int, int, int, int],
        points: np.ndarray,
        outer: np.ndarray,
        lips: FrameLips | None = None,
    ) -> FaceRig:
        x0, y0, x1, y1 = box
        off = np.array([x0, y0, 0.0])
        lm = points.astype(np.float64) - off
        if lips is None:
            lips = frame_lips(crop, lm)
        else:
            lips = replace(lips, points=lips.points - off.astype(np.float32))
        lm = lips.points.astype(np.float64)
        if self._chin is not None:
            lm = chin_under_lips(lm, self._chin)
        verts = np.concatenate([lm, outer - off])
        origin, axes, iod = face_frame(lm)
        local = ((verts - origin) @ axes.T) / iod
        gap = max(0.0, float(np.mean([local[b, 1] - local[a, 1] for a, b in GAP_PAIRS])))
        return replace(
            self._template,
            image=crop,
            verts=verts.astype(np.float32),
            origin=origin.astype(np.float32),
            axes=axes.astype(np.float32),
            iod=iod,
            local=local.astype(np.float32),
            source_gap=gap,
            seen_gap=None,  # a frame's own mouth is kept or redrawn on its snapped lips' scale
            mouth_open_source=gap > OPEN_SOURCE_GAP_IOD,
            rest_lips=self._rest,
            lip_rgb=lips.lip_rgb,
            skin_rgb=lips.skin_rgb,
            roi=(0, 0, x1 - x0, y1 - y0),
        )

    def redraw_crop(
        self,
        crop: np.ndarray,
        box: tuple[int, int, int, int],
        points: np.ndarray,
        mouth: np.ndarray,
        lips: FrameLips | None = None,
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]] | None:
        """The redrawn part of a frame's ``region``: ``crop`` (RGB uint8, that region of the frame),
        ``points`` the frame's (478, 3) landmarks, ``mouth`` values of ``MOUTH_CHANNELS``, ``lips`` the
        frame's ``frame_lips`` when measured beforehand. Returns (the redrawn rows, their blend weight
        (H, W) float32, (first row, first column) in the crop), or None when the frame keeps its own mouth."""
        if _already(points if lips is None else lips.points, mouth):
            return None
        rig, renderer, values, drawn = self._draw(crop, box, points, self._carried(points), mouth, lips)
        if self.bank is not None and len(self.bank):
            vt = renderer.target_points(values)
            gap = float(np.mean([vt[b, 1] - vt[a, 1] for a, b in GAP_PAIRS])) / rig.iod
            if gap > rig.source_gap + BANK_WIDER:
                self.bank.paint(drawn, vt, rig.iod)
        r0 = _mask_top(rig)
        # only the columns where the redraw differs from the frame
        diff = np.flatnonzero(cv2.absdiff(drawn[r0:], crop[r0:]).max(axis=0).max(axis=1))
        if not len(diff):
            return None
        c0, c1 = int(diff[0]), int(diff[-1]) + 1
        alpha = lower_face_mask(rig, r0, (c0, c1))
        return np.ascontiguousarray(drawn[r0:, c0:c1]), alpha, (r0, c0)

    def _draw(
        self,
        crop: np.ndarray,
        box: tuple[int, int, int, int],
        points: np.ndarray,
        outer: np.ndarray,
        mouth: np.ndarray,
        lips: FrameLips | None,
    ) -> tuple[FaceRig, WarpRenderer, np.ndarray, np.ndarray]:
        """The crop's rig, its renderer, the channel row for ``mouth`` and the crop drawn with it."""
        rig = self._crop_rig(crop, box, points, outer, lips)
        values = self._neutral.copy()
        for name, v in zip(MOUTH_CHANNELS, mouth):
            values[CHANNEL_INDEX[name]] = v
        renderer = WarpRenderer(rig, draw_eyes=False)
        return rig, renderer, values, renderer.render(values)

    def shut(self, image: np.ndarray, points: np.ndarray, lips: FrameLips) -> tuple[np.ndarray, np.ndarray] | None:
        """``image`` (RGB uint8, not modified) with its mouth redrawn at rest (the lips together), and its
        (478, 3) landmarks moved as far as the redraw shows them moved; None when it is shut already.
        ``points``: the frame's landmarks, ``lips``: its ``frame_lips``."""
        rest = np.array([1.0 if c == "mouthClose" else 0.0 for c in MOUTH_CHANNELS], np.float32)
        if _already(lips.points, rest):
            return None
        h, w = image.shape[:2]
        outer, box = self._outer(points, (w, h))
        x0, y0, x1, y1 = box
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        rig, renderer, values, drawn = self._draw(crop, box, points, outer, rest, lips)
        r0 = _mask_top(rig)
        alpha = lower_face_mask(rig, r0)
        out = image.copy()
        region = out[y0 + r0 : y1, x0:x1]
        region[:] = blend(region, drawn[r0:], alpha)
        # each landmark moves by the redraw's motion there, as far as the blend shows it
        new = lips.points.astype(np.float64)
        moved = renderer.target_points(values)[: len(new)] + np.array([x0, y0])
        row = np.round(new[:, 1]).astype(int) - y0 - r0
        col = np.round(new[:, 0]).astype(int) - x0
        inside = (row >= 0) & (row < alpha.shape[0]) & (col >= 0) & (col < alpha.shape[1])
        a = np.zeros(len(new))
        a[inside] = alpha[row[inside], col[inside]]
        new[:, :2] += a[:, None] * (moved - new[:, :2])
        return out, new.astype(np.float32)

    def redraw(self, image: np.ndarray, points: np.ndarray, mouth: np.ndarray) -> np.ndarray:
        """``image`` (RGB uint8, not modified) with its mouth re-rendered to ``mouth``: values of
        ``MOUTH_CHANNELS`` (len 6). ``points``: the frame's (478, 3) landmarks."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = box = self.region(points, (w, h))
        out = image.copy()
        got = self.redraw_crop(np.ascontiguousarray(image[y0:y1, x0:x1]), box, points, mouth)
        if got is not None:
            drawn, alpha, (r0, c0) = got
            region = out[y0 + r0 : y0 + r0 + drawn.shape[0], x0 + c0 : x0 + c0 + drawn.shape[1]]
            region[:] = blend(region, drawn, alpha)
        return out


@dataclass(frozen=True)
class FrameLips:
    """What the redraw measures of a frame's lips, kept for frames drawn again and again (a video avatar's
    loop): the landmarks with the inner lips snapped to the picture, and the lip and cheek colours."""

    points: np.ndarray  # (478, 3) pixels of the frame
    lip_rgb: np.ndarray  # (3,) float32
    skin_rgb: np.ndarray  # (3,) float32


_CONTOURS = (T.LIP_OUTER_UPPER, T.LIP_INNER_UPPER, T.LIP_OUTER_LOWER, T.LIP_INNER_LOWER)


def face_frame(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``face_axes`` of (478, 3) landmarks ``lm`` (pixels), refused for a face too small to redraw."""
    origin, axes, iod = face_axes(lm)
    if iod < 8:
        raise RigError(f"the face is too small to redraw (eyes {iod:.1f} px apart; need at least 8)")
    return origin, axes, iod


def closed_frame(points: np.ndarray) -> int | None:
    """Index into ``points`` (N, 478, 3; NaN where no face) of the shot's typical closed mouth: of the
    frames whose lips are together (``lip_gap_iod`` under 0.05 IOD, all frames at once), the one whose
    mouth is as wide as most of theirs are (the median), not a grin's or a pout's; None when none is."""
    p = np.asarray(points, np.float64)
    if not len(p):
        return None
    ex, iod = eye_axis(p)
    gaps = np.where(np.isfinite(p).all(axis=(1, 2)), lip_gaps_iod(p, (ex, iod)), np.inf)
    closed = np.flatnonzero(gaps < 0.05)
    if not len(closed):
        return None
    width = np.abs(((p[closed, 291, :2] - p[closed, 61, :2]) * ex[closed]).sum(axis=1)) / iod[closed]
    return int(closed[np.argmin(np.abs(width - np.median(width)) + 0.1 * gaps[closed])])


def frame_lips(image: np.ndarray, points: np.ndarray) -> FrameLips:
    """``FrameLips`` of an RGB uint8 frame and its (478, 3) landmarks (pixels)."""
    lm = points.astype(np.float64)
    r, left = eye_centres(lm)
    iod = max(float(np.linalg.norm((left - r)[:2])), 1.0)
    lm = _near(snap_inner_lips, image, lm, _LIPS, 0.4 * iod, iod)
    lip = _near(_mean_colour, image, lm, _LIPS, 1.0, _LIPS, hole=INNER)
    skin = _near(_mean_colour, image, lm, _CHEEKS, 1.0, _CHEEKS)
    return FrameLips(lm.astype(np.float32), np.asarray(lip, np.float32), np.asarray(skin, np.float32))


def blend(under: np.ndarray, over: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``under`` + ``alpha`` (H, W) * (``over`` - ``under``), rounded, for uint8 images of the same size."""
    a = np.ascontiguousarray(alpha, np.float32)
    return np.asarray(cv2.blendLinear(np.ascontiguousarray(over), np.ascontiguousarray(under), a, 1.0 - a))


_REACH = 0.1  # the crop reaches this far (IOD) past the triangles the mouth can move
_PROBES = {"jawOpen": 1.0, "mouthClose": 1.0, "mouthFunnel": 1.0, "mouthPucker": 1.0, "mouthStretch": 1.0,
           "mouthRollLower": 1.0}  # fmt: skip


def _moving_vertices(rig: FaceRig) -> np.ndarray:
    """Indices of the vertices of every triangle of ``rig`` that a mouth channel (each at its strongest,
    the jaw also shut) moves."""
    renderer = WarpRenderer(rig, draw_eyes=False)
    v0 = rig.verts[:, :2].astype(np.float64)
    moved = np.zeros(len(v0), bool)
    for name, value in list(_PROBES.items()) + [("jawOpen", 0.0)]:
        v = np.zeros(len(CHANNELS), np.float32)
        v[CHANNEL_INDEX["jawOpen"]] = 0.5
        v[CHANNEL_INDEX[name]] = value
        moved |= np.abs(renderer.target_points(v) - v0).max(axis=1) > 0.05
    return np.unique(rig.tris[moved[rig.tris].any(axis=1)])


_TOP_PAD = 0.35  # the crop starts this far (IOD) above the nose's bottom or the mouth corners
_LIPS = T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER[::-1][1:-1]
_CHEEKS = [50, 101, 36, 205, 187, 123, 117, 118]


def _near(fn, image: np.ndarray, lm: np.ndarray, ids: list[int], pad: float, *args, **kw):  # type: ignore[no-untyped-def]
    """``fn(sub, lm_sub, *args)`` on the part of ``image`` around landmarks ``ids`` (grown by ``pad``
    pixels) with landmarks shifted into it: the same result, read from fewer pixels. A returned (478, 3)
    array is shifted back."""
    h, w = image.shape[:2]
    p = lm[ids, :2]
    x0, y0 = int(max(0, np.floor(p[:, 0].min() - pad) - 2)), int(max(0, np.floor(p[:, 1].min() - pad) - 2))
    x1, y1 = int(min(w, np.ceil(p[:, 0].max() + pad) + 3)), int(min(h, np.ceil(p[:, 1].max() + pad) + 3))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return fn(image, lm, *args, **kw)
    off = np.zeros(lm.shape[1])
    off[:2] = (x0, y0)
    got = fn(np.ascontiguousarray(image[y0:y1, x0:x1]), lm - off, *args, **kw)
    if isinstance(got, np.ndarray) and got.shape == lm.shape:
        return got + off
    return got


_SAME_GAP = 0.01  # a frame whose lip gap is this close (IOD) to the new one keeps its own mouth
_SAME_SHAPE = 0.05  # ... when the new mouth has no funnel, pucker, stretch or roll past this


def _already(points: np.ndarray, mouth: np.ndarray) -> bool:
    """Whether a frame's own mouth already is the new one (both at rest, or open alike with no lip shape)."""
    m = dict(zip(MOUTH_CHANNELS, (float(x) for x in mouth)))
    target = MAX_LIP_GAP_IOD * max(m["jawOpen"], 0.0) * (1.0 - min(max(m["mouthClose"], 0.0), 1.0))
    shape = max(abs(m[c]) for c in ("mouthFunnel", "mouthPucker", "mouthStretch", "mouthRollLower"))
    return shape < _SAME_SHAPE and abs(max(lip_gap_iod(points), 0.0) - target) < _SAME_GAP


def _mask_rise(rig: FaceRig) -> tuple[float, float]:
    """The face-frame heights (IOD) where ``lower_face_mask`` leaves 0 and where it reaches 1."""
    nose = float(rig.local[2, 1])
    lip_top = float(rig.local[0, 1]) - 0.06
    return min(nose + 0.02, lip_top - 0.04), lip_top


def _mask_top(rig: FaceRig) -> int:
    """The first row of a rig's crop in which ``lower_face_mask`` is not 0 anywhere."""
    h, w = rig.image.shape[:2]
    ey = rig.axes[1, :2].astype(np.float64)
    o = rig.origin[:2].astype(np.float64)
    if ey[1] <= 1e-6:
        return 0
    top, _ = _mask_rise(rig)
    reach = max((-o[0]) * ey[0], (w - 1 - o[0]) * ey[0]) / rig.iod  # the most any column adds to the height
    return int(np.clip(np.floor(o[1] + (top - reach) * rig.iod / ey[1]) - 1, 0, h))


def lower_face_mask(rig: FaceRig, r0: int = 0, cols: tuple[int, int] | None = None) -> np.ndarray:
    """(H - r0, W) float32 weight of the redrawn pixels in a rig's crop from row ``r0`` on (and in columns
    ``cols``, when given): 0 down to the bottom of the nose, rising smoothly to 1 a little above the top of
    the upper lip (which lifts as the mouth opens)."""
    h, w = rig.image.shape[:2]
    c0, c1 = cols or (0, w)
    ey = rig.axes[1, :2].astype(np.float32)
    o = rig.origin[:2]
    top, lip_top = _mask_rise(rig)
    xs = (np.arange(c0, c1, dtype=np.float32) - o[0]) * (ey[0] / rig.iod)
    ys = (np.arange(r0, h, dtype=np.float32) - o[1]) * (ey[1] / rig.iod)
    t = (ys[:, None] - top) + xs[None, :]  # face-frame height past the start of the rise, IOD units
    t = np.clip(t * (1.0 / max(lip_top - top, 1e-3)), 0.0, 1.0)
    return np.asarray(t * t * (3 - 2 * t), np.float32)
