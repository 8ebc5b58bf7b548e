"""Lip colour: how an open mouth's lips and opening differ ("redness"), the lips' inner edge moved onto
where the colour changes, and mean colours of landmark regions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from render import topology as T

# Source lip gap above which the portrait is treated as showing its mouth interior (teeth).
OPEN_SOURCE_GAP_IOD = 0.03
_SNAP_REACH = 0.06  # an open mouth's inner-lip points move at most this far onto the lips' edge (iod)


@dataclass(frozen=True)
class LipColours:
    """How an open mouth's lips and its opening differ in colour: R - (G + B) / 2 ("redness") per pixel,
    the lips' and the opening's median of it, and their masks (from the mesh's lip contours)."""

    redness: np.ndarray  # (H, W) float32
    lips: np.ndarray  # (H, W) bool: between the outer and inner contours
    hole: np.ndarray  # (H, W) bool: inside the inner contour
    lip: float
    opening: float

    @property
    def distinct(self) -> bool:
        """Whether the lips are told from the opening by redness (``LIP_CONTRAST``)."""
        return self.lip - self.opening >= LIP_CONTRAST


def redness(rgb: np.ndarray) -> np.ndarray:
    """R - (G + B) / 2 of an RGB image or colour (float32)."""
    f = np.asarray(rgb, np.float32)
    return np.asarray(f[..., 0] - 0.5 * (f[..., 1] + f[..., 2]), np.float32)


LIP_CONTRAST = 12.0
"""Lips are told from what lies next to them by redness when theirs is this much higher."""


def eye_centres(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The right and left eyes' centres (the means of their mesh contours) of mediapipe landmarks ``lm``;
    the distance between them is the rig's inter-ocular distance."""
    return lm[T.R_EYE_UPPER + T.R_EYE_LOWER].mean(axis=0), lm[T.L_EYE_UPPER + T.L_EYE_LOWER].mean(axis=0)


def lip_colours(image: np.ndarray, lm: np.ndarray) -> LipColours | None:
    """The lips' and the opening's colours, or None when they cannot be told apart by redness (grey or
    pale lips; a closed mouth's empty opening)."""
    regions = lip_regions(image, lm)
    return regions if regions is not None and regions.distinct else None


def lip_regions(image: np.ndarray, lm: np.ndarray) -> LipColours | None:
    """The lips' and the opening's masks and redness, whether or not their colours differ; None when
    either covers under 20 pixels."""
    h, w = image.shape[:2]
    red = redness(image)
    inner = np.concatenate([lm[T.LIP_INNER_UPPER, :2], lm[T.LIP_INNER_LOWER[::-1][1:-1], :2]])
    outer = np.concatenate([lm[T.LIP_OUTER_UPPER, :2], lm[T.LIP_OUTER_LOWER[::-1][1:-1], :2]])
    hole8 = np.zeros((h, w), np.uint8)
    outer8 = np.zeros((h, w), np.uint8)
    cv2.fillPoly(hole8, [np.round(inner).astype(np.int32)], (255,))
    cv2.fillPoly(outer8, [np.round(outer).astype(np.int32)], (255,))
    hole = hole8 > 0
    lips = (outer8 > 0) & ~hole
    if lips.sum() < 20 or hole.sum() < 20:
        return None
    r_lip, r_in = float(np.median(red[lips])), float(np.median(red[hole]))
    return LipColours(red, lips, hole, r_lip, r_in)


def snap_inner_lips(image: np.ndarray, lm: np.ndarray, iod: float) -> np.ndarray:
    """The inner-lip contour of an open portrait mouth moved onto the lips' real edge, by colour.

    The mesh's inner contour of a mouth showing teeth often runs a few pixels inside the opening, over
    the teeth's tops; the lip triangles then carry a strip of teeth, and closing that mouth shows it (or
    an inpainted stand-in) along the seam. Per contour point, the lip's edge is where, going from the
    lip towards the opening, the colour stops being lip-red; a point moves at most ``_SNAP_REACH`` and
    the moves are smoothed along the contour. Grey or pale lips (no colour difference to the opening)
    and closed mouths are left as they are.
    """
    if (lm[14, 1] - lm[13, 1]) / iod <= OPEN_SOURCE_GAP_IOD:
        return lm
    colours = lip_colours(image, lm)
    if colours is None:
        return lm
    red = np.asarray(cv2.GaussianBlur(colours.redness, (0, 0), 0.7), np.float32)
    r_lip, r_in = float(np.median(red[colours.lips])), float(np.median(red[colours.hole]))
    thr = 0.5 * (r_lip + r_in)
    reach = max(2.0, _SNAP_REACH * iod)
    out = lm.copy()
    for ids, sign in ((T.LIP_INNER_UPPER[1:-1], 1.0), (T.LIP_INNER_LOWER[1:-1], -1.0)):
        shifts = np.zeros(len(ids))
        for k, i in enumerate(ids):
            x, y = float(lm[i, 0]), float(lm[i, 1])
            # from inside the lip (sign: the upper lip lies above its contour) towards the opening
            ys = y - sign * reach + sign * np.arange(0.0, 2 * reach + 0.01, 0.5)
            at = (np.full((1, len(ys)), x, np.float32), ys[None, :].astype(np.float32))
            col = cv2.remap(red, *at, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
            is_lip = col >= thr
            if not is_lip[0] or is_lip.all():
                continue  # no lip where the lip should be, or no end to it in reach (a tongue): leave it
            end = int(np.argmin(np.append(is_lip, False)))  # first sample past the lip
            shifts[k] = ys[min(end, len(ys) - 1)] - sign * 0.25 - y
        if len(shifts) >= 3:
            padded = np.concatenate([shifts[:1], shifts, shifts[-1:]])
            shifts = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
        out[ids, 1] += shifts
    # never past the outer contour, nor crossing the other lip
    out[T.LIP_INNER_UPPER[1:-1], 1] = np.maximum(out[T.LIP_INNER_UPPER[1:-1], 1], lm[T.LIP_OUTER_UPPER[1:-1], 1] + 1.0)
    out[T.LIP_INNER_LOWER[1:-1], 1] = np.minimum(out[T.LIP_INNER_LOWER[1:-1], 1], lm[T.LIP_OUTER_LOWER[1:-1], 1] - 1.0)
    return out


def mean_colour(image: np.ndarray, lm: np.ndarray, idx: list[int], hole: list[int] | None = None) -> np.ndarray:
    mask = np.zeros(image.shape[:2], np.uint8)
    pts = np.round(lm[idx, :2]).astype(np.int32)
    cv2.fillPoly(mask, [cv2.convexHull(pts) if hole is None else pts], (255,))
    if hole:
        cv2.fillPoly(mask, [np.round(lm[hole, :2]).astype(np.int32)], (0,))
    if mask.sum() == 0:
        return np.array([150.0, 90.0, 90.0])
    return image[mask > 0].reshape(-1, 3).mean(axis=0)


_CHIN_SHARE = 0.8  # a point under the lower lip keeps at least this share of its closed-mouth depth below it


@lru_cache(maxsize=1)
def _under_lower_lip() -> np.ndarray:
    """Mesh points between the mouth corners' columns that lie under the lower lip's outer contour (the
    chin's front, down to its tip), from the canonical face."""
    from render.canonical import canonical_mesh

    m = canonical_mesh()
    lo = T.LIP_OUTER_LOWER
    order = np.argsort(m[lo, 0])
    xs, ys = m[lo, 0][order], m[lo, 1][order]
    inside = (m[:, 0] > xs[0] + 0.05) & (m[:, 0] < xs[-1] - 0.05)
    under = m[:, 1] > np.interp(m[:, 0], xs, ys) + 0.03
    return np.flatnonzero(inside & under)


def _eye_line(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(along the eyes, across them, IOD) of (478, 2) landmarks ``p`` (pixels)."""
    r, left = eye_centres(p)
    ex = left - r
    iod = max(float(np.linalg.norm(ex)), 1e-6)
    ex /= iod
    return ex, np.array([-ex[1], ex[0]]), iod


def depths_under_lip(points: np.ndarray) -> np.ndarray:
    """How far (inter-ocular distances, across the eye line) each of the points under the lower lip lies
    below the lip's outer contour at its column, in (478, >=2) landmarks ``points`` (pixels)."""
    p = np.asarray(points, np.float64)[:, :2]
    ex, ey, iod = _eye_line(p)
    x, y = p @ ex / iod, p @ ey / iod
    lo = T.LIP_OUTER_LOWER
    order = np.argsort(x[lo])
    ids = _under_lower_lip()
    return np.asarray(y[ids] - np.interp(x[ids], x[lo][order], y[lo][order]))


def chin_under_lips(points: np.ndarray, closed_depths: np.ndarray) -> np.ndarray:
    """``points`` (478, 3) landmarks (pixels) with the chin's front moved down where the detector has
    pressed it up against a wide-open lower lip (or above it), to at least ``_CHIN_SHARE`` of the depths
    the same face's points have with the lips together (``closed_depths``, from ``depths_under_lip``).

    The lower lip and the chin both ride on the jaw, so opening the mouth barely changes how far apart
    they are; mediapipe's mesh of a wide-open mouth seen from below crowds them together, and a redraw
    closing that mouth would carry the lip's own texture down onto the chin."""
    p = np.asarray(points, np.float64)
    push = np.maximum(_CHIN_SHARE * np.asarray(closed_depths) - depths_under_lip(p), 0.0)
    if not push.any():
        return p
    _, ey, iod = _eye_line(p[:, :2])
    out = p.copy()
    out[_under_lower_lip(), :2] += (push * iod)[:, None] * ey
    return out
