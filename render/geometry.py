"""Small 2-D transforms (and a scalar clamp) shared by the warp, the deformer and the painters."""

from __future__ import annotations

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
