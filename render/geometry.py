"""Small 2-D transforms (and a scalar clamp) shared by the warp, the deformer and the painters."""

from __future__ import annotations

import cv2
import numpy as np


def clamp(x: float, lo: float, hi: float) -> float:
    """``float(np.clip(x, lo, hi))`` for one number, without numpy's per-call overhead (per-frame paths)."""
    return min(max(float(x), lo), hi)


def similarity(a: np.ndarray, b: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
    """2x3 similarity (rotation, scale, translation) taking the two points ``a`` onto ``b``, plus ``shift``."""
    da = complex(*(a[1] - a[0]))
    db = complex(*(b[1] - b[0]))
    m = db / da if abs(da) > 1e-9 else complex(1, 0)
    rot = np.array([[m.real, -m.imag], [m.imag, m.real]])
    t = b[0] - rot @ a[0]
    if shift is not None:
        t = t + shift
    return np.array([[m.real, -m.imag, t[0]], [m.imag, m.real, t[1]]])


def apply(aff: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points (N, 2) through a 2x3 affine."""
    return pts @ aff[:, :2].T + aff[:, 2]


def sorted_by_x(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The x and y of points (n, >=2) in order of x: a curve's samples as ``np.interp`` takes them."""
    o = np.argsort(pts[:, 0])
    return pts[o, 0], pts[o, 1]


def fill_columns(rgb: np.ndarray, cols: np.ndarray, ok: np.ndarray) -> None:
    """In place: the tones (n, 3) of the columns ``cols`` not ``ok``, interpolated from those that are."""
    if ok.all():
        return
    for c in range(3):
        rgb[~ok, c] = np.interp(cols[~ok], cols[ok], rgb[ok, c])


_SHARP_SIGMA = 1.2  # what ``picture_blur``'s edge measure reads on a sharp photograph (pixels)
SOFT_MIN = 0.75
"""Pictures softer than this (``picture_blur``, pixels) get drawn parts (an opening mouth, shut lids,
lashes) blurred as much as the picture."""


def picture_blur(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """How blurred the picture is inside ``box`` (x0, y0, x1, y1): the Gaussian blur (pixels) a sharp
    picture would need to look like it, 0 for a sharp one. An upscaled small photo or a soft painting
    reads 1-2.5; drawn parts (a mouth's opening, teeth) match it so they do not look pasted on.

    Read from its strongest edges: a step blurred by s0 keeps s0 / sqrt(s0^2 + 4) of its steepest slope
    under a further blur of 2 pixels."""
    x0, y0, x1, y1 = box
    region = np.asarray(image[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)], np.float32)
    if region.ndim == 3:
        region = region.mean(axis=2)
    if min(region.shape[:2]) < 16:
        return 0.0

    def steepest(a: np.ndarray) -> float:
        gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3)
        return float(np.percentile(np.hypot(gx, gy), 99))

    g0 = steepest(region)
    if g0 <= 1e-6:
        return 0.0
    r = min(steepest(cv2.GaussianBlur(region, (0, 0), 2.0)) / g0, 0.999)
    s0 = 2.0 * r / np.sqrt(1.0 - r * r)
    return float(np.sqrt(max(s0 * s0 - _SHARP_SIGMA * _SHARP_SIGMA, 0.0)))


def soft_around(image: np.ndarray, points: np.ndarray, pad: float) -> float:
    """``picture_blur`` over the box of ``points`` (N, 2) grown by ``pad`` pixels, 0 where it is under
    ``SOFT_MIN`` (a sharp picture's drawn parts stay as crisp as they are)."""
    lo, hi = points.min(axis=0) - pad, points.max(axis=0) + pad
    blur = picture_blur(image, (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])))
    return blur if blur > SOFT_MIN else 0.0
