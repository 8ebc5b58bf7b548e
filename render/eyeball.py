"""Wide-open eyes: the eyeball drawn where a raised upper lid uncovers it.

The warp samples an eye opening rigidly from the portrait (the lids slide over the eyeball). When the
upper lid rises above where the portrait has it, the rigid sample above the old lid margin is the lid
itself (its lash line, its skin), and the portrait's own lash shadow at the top of the opening stays
where it was, a dark line across the eye. So, per eye, a patch of the portrait's eye is made once: the
opening as it is, and above the margin (and in the lash-shadowed top of the opening) the eyeball
continued, the iris as a disc of its own colour with a darker rim and its pupil, the sclera in the
colour each column has just under the lid, a little shaded under the lid. Per frame, inside the raised
opening, the patch is drawn with the opening's own rigid map (eye corners and gaze), and the lash
shadow is drawn again under the lid's new margin, as dark as the portrait has it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from render import topology as T
from render.deform import WIDE
from render.geometry import fill_columns, similarity, sorted_by_x
from render.rig import FaceRig

_TOP_BAND = 0.15  # the top of the opening redrawn as eyeball (the lash shadow), as a share of the lid gap
_LID_SHADE = 0.88  # the uncovered eyeball's brightness under the lid, against the open eye's
_REF_ROWS = 0.3  # the rows under it whose colour the sclera continues with, as a share of the lid gap
_RIM = 0.75  # the iris darkens from this share of its radius outwards ...
_RIM_DARK = 0.7  # ... to this share of its colour at its edge
_PUPIL = 0.4  # pupil radius, as a share of the iris radius
_FULL = 0.3  # widening at which the eyeball is drawn fully (below it, blended in)


@dataclass
class _Patch:
    image: np.ndarray  # (h, w, 4) float32: the eye's box of the portrait, the eyeball continued above the lid,
    # and how much of it a frame takes (0..1)
    x0: int
    y0: int
    shadow: float  # how much darker the portrait's opening is under its lid margin (0..1)
    shadow_px: float  # and over how many pixels below it


class EyeballPainter:
    """Draws the uncovered eyeball of widened eyes onto rendered frames of one rig."""

    def __init__(self, rig: FaceRig, soft: float = 0.0) -> None:
        """``soft``: ``render.eyes.eyes_soft(rig)`` (0: a sharp picture's crisp edge)."""
        self.rig = rig
        self._v0 = rig.verts[:, :2].astype(np.float64)
        self._eyes = (
            (T.R_EYE_UPPER, T.R_EYE_LOWER, (33, 133), T.R_IRIS),
            (T.L_EYE_UPPER, T.L_EYE_LOWER, (362, 263), T.L_IRIS),
        )
        self._patches: list[_Patch | None] | None = None
        self.soft = soft  # the picture's softness around the eyes: the uncovered eyeball's edge matches it

    def _patch_list(self) -> list[_Patch | None]:
        if self._patches is None:
            image, v0 = self.rig.image, self._v0
            self._patches = [_make_patch(image, v0, up, lo, iris, WIDE) for up, lo, _, iris in self._eyes]
        return self._patches

    def paint(self, out: np.ndarray, vt: np.ndarray, widen: tuple[float, float], gaze: np.ndarray) -> None:
        """Draw into ``out`` (H, W, 3 uint8) the eyeballs of the opening at target vertices ``vt`` (Nv, 2),
        for each eye (right, left) widened by ``widen`` (0..1), the irises shifted by ``gaze`` (pixels)."""
        if max(widen) <= 0.01:
            return
        for (up, lo, corners, _), w, patch in zip(self._eyes, widen, self._patch_list()):
            if w <= 0.01 or patch is None:
                continue
            _draw(out, patch, vt, self._v0, up, lo, corners, gaze, min(1.0, w / _FULL), self.soft)


def _make_patch(
    image: np.ndarray, v0: np.ndarray, up: list[int], lo: list[int], iris: list[int], wide_share: float
) -> _Patch | None:
    upper, lower = v0[up], v0[lo]
    gap = float(np.mean(lower[2:-2, 1] - upper[2:-2, 1]))
    eye_w = float(np.linalg.norm(upper[-1] - upper[0]))
    if gap < 2.0 or eye_w < 6.0:
        return None  # an eye too small or too shut to show more of
    h, w = image.shape[:2]
    reach = wide_share * gap * 1.6 + 3
    x0 = max(0, int(np.floor(upper[:, 0].min() - 0.25 * eye_w)))
    x1 = min(w, int(np.ceil(upper[:, 0].max() + 0.25 * eye_w)) + 1)
    y0 = max(0, int(np.floor(upper[:, 1].min() - reach)))
    y1 = min(h, int(np.ceil(lower[:, 1].max())) + 3)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = image[y0:y1, x0:x1].astype(np.float32)
    origin = np.array([x0, y0], np.float64)
    opening = np.zeros((y1 - y0, x1 - x0), np.uint8)
    poly = np.concatenate([upper, lower[::-1]]) - origin
    cv2.fillPoly(opening, [np.round(poly * 4).astype(np.int32)], (1,), cv2.LINE_8, shift=2)
    inside = cv2.erode(opening, np.ones((3, 3), np.uint8)).astype(bool)
    if inside.sum() < 6:
        inside = opening.astype(bool)
    ys, xs = np.mgrid[0 : y1 - y0, 0 : x1 - x0].astype(np.float64)
    lum = crop @ np.array([0.299, 0.587, 0.114], np.float32)
    # the lid margin's height in each column, and how far each pixel lies below it
    margin = np.interp(xs[0], *sorted_by_x(upper - origin))
    below = ys - margin[None, :]
    top = _TOP_BAND * gap
    # the iris continues as a disc of its own colour, darker at its rim, with its pupil; the sclera
    # beside it continues each column's colour just under the lash-shadowed top (its darker part: no
    # catchlights), smoothed along the eye; both shaded under the lid
    centre = v0[iris[0]] - origin
    radius = float(np.clip(np.mean(np.linalg.norm(v0[iris[1:]] - v0[iris[0]], axis=1)), 0.15 * eye_w, 0.35 * eye_w))
    dist = np.hypot(xs - centre[0], ys - centre[1])
    open_px = inside & (below >= top)
    iris_px = open_px & (dist < 0.9 * radius)
    ref_rows = open_px & (below <= top + max(2.0, _REF_ROWS * gap)) & (dist > 1.1 * radius)
    cols = np.full((x1 - x0, 3), np.nan, np.float32)
    for x in np.where(ref_rows.any(axis=0))[0]:
        px = crop[ref_rows[:, x], x]
        order = np.argsort(lum[ref_rows[:, x], x])
        cols[x] = np.median(px[order[: max(1, int(np.ceil(0.7 * len(order))))]], axis=0)
    ok = np.isfinite(cols[:, 0])
    if ok.sum() < 2 or iris_px.sum() < 4:
        return None
    fill_columns(cols, np.arange(x1 - x0), ok)
    cols = cv2.GaussianBlur(cols[None], (0, 0), sigmaX=max(1.0, 0.04 * eye_w), sigmaY=0.1)[0]
    sclera = np.broadcast_to(cols[None, :, :], crop.shape)
    iris_rgb = _typical(crop, lum, iris_px, 25, 75)
    pupil_rgb = _typical(crop, lum, iris_px, 0, 8)
    rim = np.clip((dist / radius - _RIM) / (1 - _RIM), 0, 1)[..., None]
    ring = iris_rgb * (1 - (1 - _RIM_DARK) * rim)
    edge = np.clip(radius - dist + 0.5, 0, 1)[..., None]  # antialiased iris edge
    ball = sclera * (1 - edge) + ring * edge
    pupil = np.clip(_PUPIL * radius - dist + 0.5, 0, 1)[..., None]
    ball = ball * (1 - pupil) + pupil_rgb * pupil
    shade = _LID_SHADE + (1 - _LID_SHADE) * np.clip(1 + (below - top) / max(1.0, wide_share * gap), 0, 1)
    ball = (ball * shade[..., None]).astype(np.float32)
    # keep the portrait's opening below its lash-shadowed top; the eyeball everywhere above
    keep = np.clip(below - top, 0, 1) * opening
    patch = crop * keep[..., None] + ball * (1 - keep[..., None])
    # what the frame takes from the patch: the eyeball above the portrait's opening and in its top; the
    # rest of the opening is drawn by the warp already
    replace = (1 - keep) * (below < 0.5 * gap)
    # the lash shadow under the margin: the opening's top rows against the eyeball below them
    band = inside & (below >= 0) & (below <= max(1.5, _TOP_BAND * gap))
    shadow = 0.0
    if band.sum() >= 3:
        ref = float(np.median((ball @ np.array([0.299, 0.587, 0.114], np.float32))[band]))
        ratio = float(np.median(lum[band])) / max(1.0, ref)
        shadow = float(np.clip(1 - ratio, 0.0, 0.6))
    layers = np.dstack([patch, replace])
    return _Patch(layers.astype(np.float32), x0, y0, shadow, max(0.8, 0.5 * _TOP_BAND * gap))


def _draw(
    out: np.ndarray,
    patch: _Patch,
    vt: np.ndarray,
    v0: np.ndarray,
    up: list[int],
    lo: list[int],
    corners: tuple[int, int],
    gaze: np.ndarray,
    strength: float,
    soft: float = 0.0,
) -> None:
    """``soft``: the picture's blur (pixels): the opening's edge is feathered by as much."""
    upper, lower = vt[up], vt[lo]
    poly = np.concatenate([upper, lower[::-1]])
    h, w = out.shape[:2]
    room = int(np.ceil(2.5 * soft))
    fx0 = max(0, int(np.floor(poly[:, 0].min())) - 1 - room)
    fy0 = max(0, int(np.floor(poly[:, 1].min())) - 1 - room)
    fx1 = min(w, int(np.ceil(poly[:, 0].max())) + 2 + room)
    fy1 = min(h, int(np.ceil(poly[:, 1].max())) + 2 + room)
    if fx1 - fx0 < 2 or fy1 - fy0 < 2:
        return
    a, b = corners
    aff = similarity(vt[[a, b]], v0[[a, b]], shift=-gaze)  # frame -> portrait, as the warp maps the opening
    m = aff.copy()
    m[:, 2] = aff[:, :2] @ np.array([fx0, fy0], np.float64) + aff[:, 2] - np.array([patch.x0, patch.y0])
    ball = cv2.warpAffine(
        patch.image,
        m,
        (fx1 - fx0, fy1 - fy0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    mask = np.zeros((fy1 - fy0, fx1 - fx0), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - [fx0, fy0]) * 4).astype(np.int32)], (255,), cv2.LINE_AA, shift=2)
    edge = mask.astype(np.float32) / 255.0
    if room:
        edge = np.asarray(cv2.GaussianBlur(edge, (0, 0), soft), np.float32)
    alpha = edge * ball[..., 3] * strength
    rgb = np.asarray(ball[..., :3], np.float32)
    if patch.shadow > 0:
        ys = np.arange(fy0, fy1, dtype=np.float64)[:, None] + 0.5
        xs = np.arange(fx0, fx1, dtype=np.float64)
        margin = np.interp(xs, *sorted_by_x(upper))[None, :]
        below = np.maximum(ys - margin, 0.0)
        rgb = rgb * (1 - patch.shadow * np.exp(-((below / patch.shadow_px) ** 2)))[..., None].astype(np.float32)
    region = out[fy0:fy1, fx0:fx1]
    region[:] = np.clip(region * (1 - alpha[..., None]) + rgb * alpha[..., None], 0, 255).astype(np.uint8)


def _typical(rgb: np.ndarray, lum: np.ndarray, sel: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Median colour of the pixels of ``sel`` whose brightness lies between percentiles ``lo`` and ``hi``."""
    a, b = np.percentile(lum[sel], [lo, hi])
    pick = sel & (lum >= a) & (lum <= b)
    return np.median(rgb[pick if pick.any() else sel], axis=0).astype(np.float32)
