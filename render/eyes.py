"""Closed-lid shading: what the warp alone cannot do when an eye shuts.

Warping slides the upper lid over the eyeball, but the thin strip of lid skin it stretches is usually
brighter than the socket around it, so a shut eye can still read as an almond-shaped "open" eye. A
real closed lid is smooth skin in the tone of the visible lid, darkening towards the lash line, with
the lashes as a dark line at its lower edge. This painter adds exactly that, in proportion to the
blink, inside the area the lid has swept.
"""

from __future__ import annotations

import cv2
import numpy as np

from render import topology as T
from render.geometry import apply, similarity
from render.rig import FaceRig

_SHIFT = 3
# the lid skin above each eye reaches up to the third ring of the mesh around the eye
_R_ABOVE = [113, 225, 224, 223, 222, 221, 189]
_L_ABOVE = [342, 445, 444, 443, 442, 441, 413]


class EyePainter:
    def __init__(self, rig: FaceRig) -> None:
        self.rig = rig
        img = rig.image
        v0 = rig.verts[:, :2].astype(np.float64)
        self.v0 = v0
        self.eyes = []
        for up, lo, above, corners in (
            (T.R_EYE_UPPER, T.R_EYE_LOWER, _R_ABOVE, (33, 133)),
            (T.L_EYE_UPPER, T.L_EYE_LOWER, _L_ABOVE, (263, 362)),
        ):
            lid_poly = np.concatenate([v0[up], v0[above][::-1]])
            lid_rgb = _mean_in(img, lid_poly)
            lash_rgb = _darkest_along(img, v0[up])
            self.eyes.append((up, lo, corners, lid_rgb, lash_rgb))

    def paint(self, out: np.ndarray, vt: np.ndarray, blinks: tuple[float, float]) -> None:
        """Shade closing lids in ``out`` (in place); ``blinks`` = (right, left) closure 0..1."""
        iod = self.rig.iod
        h, w = out.shape[:2]
        for (up, lo, corners, lid_rgb, lash_rgb), b in zip(self.eyes, blinks):
            if b < 0.08:
                continue
            # where the open eye was (moved with the head by the eye corners), above the lid's new edge
            open_up = apply(similarity(self.v0[list(corners)], vt[list(corners)]), self.v0[up])
            lid_edge = vt[up]
            poly = np.concatenate([open_up, lid_edge[::-1]])
            x0 = max(0, int(np.floor(poly[:, 0].min())) - 3)
            y0 = max(0, int(np.floor(poly[:, 1].min())) - 3)
            x1 = min(w, int(np.ceil(poly[:, 0].max())) + 4)
            y1 = min(h, int(np.ceil(max(poly[:, 1].max(), vt[lo][:, 1].max()))) + 4)
            if x1 <= x0 or y1 <= y0:
                continue
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            p = np.round((poly - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
            cv2.fillPoly(m, [p], (255,), lineType=cv2.LINE_AA, shift=_SHIFT)
            sigma = max(0.6, 0.02 * iod)
            alpha = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), sigma)
            strength = 0.8 * float(np.clip((b - 0.08) / 0.6, 0, 1))
            roi = out[y0:y1, x0:x1].astype(np.float32)
            # lid tone, a little darker towards its lower edge
            ys = np.arange(y0, y1, dtype=np.float32)[:, None]
            edge_y = np.interp(np.arange(x0, x1), *_sorted_xy(lid_edge))[None, :]
            top_y = np.interp(np.arange(x0, x1), *_sorted_xy(open_up))[None, :]
            frac = np.clip((ys - top_y) / np.maximum(edge_y - top_y, 1.0), 0, 1)
            tone = lid_rgb[None, None, :] * (1.0 - 0.18 * frac[..., None])
            a = (alpha * strength)[..., None]
            roi = roi * (1 - a) + tone * a
            # lashes along the lid's edge once the eye is mostly shut
            lash_a = float(np.clip((b - 0.45) / 0.45, 0, 1))
            if lash_a > 0:
                lm = np.zeros_like(m)
                pl = np.round((lid_edge - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
                thick = max(1, int(round(0.03 * iod)))
                cv2.polylines(lm, [pl], False, (255,), thickness=thick, lineType=cv2.LINE_AA, shift=_SHIFT)
                la = (cv2.GaussianBlur(lm.astype(np.float32) / 255.0, (0, 0), 0.5) * 0.85 * lash_a)[..., None]
                roi = roi * (1 - la) + lash_rgb[None, None, :] * la
            out[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)


def _sorted_xy(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = np.argsort(pts[:, 0])
    return pts[o, 0], pts[o, 1]


def _mean_in(img: np.ndarray, poly: np.ndarray) -> np.ndarray:
    m = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(poly).astype(np.int32)], (255,))
    if not m.any():
        return np.array([120.0, 100.0, 90.0])
    px = img[m > 0].astype(np.float64)
    lum = px.sum(axis=1)
    # the skin of the lid, not its lashes or crease: the brighter half of the pixels
    return px[lum >= np.median(lum)].mean(axis=0)


def _darkest_along(img: np.ndarray, line: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    xs = np.clip(np.round(line[:, 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(line[:, 1]).astype(int), 0, h - 1)
    px = img[ys, xs].astype(np.float64)
    order = np.argsort(px.sum(axis=1))
    return px[order[: max(1, len(order) // 3)]].mean(axis=0) * 0.8
