"""The portrait's own open mouth: its opening split into what moves with the skull (upper teeth) and
with the jaw, its teeth's colour, and the portrait with its lips extended over the teeth next to their
inner edge (for closing a smiling mouth)."""

from __future__ import annotations

import cv2
import numpy as np

from render import topology as T
from render.lips import LIP_CONTRAST, lip_regions, redness
from render.rig import FaceRig

_AA_SHIFT = 3  # sub-pixel bits for polygon drawing
_TISSUE = 0.08  # the portrait's own teeth are moved with this much of the lips around them (inter-ocular distances):
# as far as a speech-wide opening lifts the upper lip off them (0.03 showed the dark cavity in between)


def curve(pts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y at ``x`` of the polyline ``pts`` (x, y) sorted by x; the end points' y beyond them."""
    order = np.argsort(pts[:, 0])
    return np.interp(x, pts[order, 0], pts[order, 1]).astype(np.float32)


def source_hole_masks(image: np.ndarray, v0: np.ndarray, iod: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft masks of the portrait's mouth opening: what goes with the skull (the upper teeth) and what
    goes with the jaw, split along the line where they meet (``_teeth_split``).

    Each reaches a little past the lip contour, into the lip: where the warped lip edge and the moved
    teeth do not quite meet, the gap shows lip-coloured tissue (like gum), not the dark cavity.
    """
    h, w = image.shape[:2]
    up = v0[T.LIP_INNER_UPPER]
    lo = v0[T.LIP_INNER_LOWER]
    split = teeth_split(image, up, lo)
    reach = (_TISSUE * iod * np.sqrt(np.sin(np.linspace(0.0, np.pi, len(up)))))[:, None] * np.array([0.0, 1.0])
    up, lo = up - reach, lo + reach
    upper_poly = np.concatenate([up, split[::-1]])
    lower_poly = np.concatenate([split, lo[::-1]])
    out = []
    for poly in (upper_poly, lower_poly):
        m = np.zeros((h, w), np.uint8)
        p = np.round(poly * (1 << _AA_SHIFT)).astype(np.int32)
        cv2.fillPoly(m, [p], (255,), lineType=cv2.LINE_AA, shift=_AA_SHIFT)
        out.append(m.astype(np.float32) / 255.0)
    return out[0], out[1]


def own_teeth_rgb(image: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
    """The colour of the portrait's own teeth: the brightest part of what its upper opening shows."""
    px = image[upper > 0.5].astype(np.float32)
    if len(px) < 20:
        return None
    lum = px.mean(axis=1)
    bright = px[lum >= np.percentile(lum, 60)]
    return np.asarray(np.median(bright, axis=0), np.float64)


def teeth_split(image: np.ndarray, up: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Where the upper teeth end in the portrait's open mouth: a polyline from corner to corner.

    A smile shows mostly upper teeth, with at most a strip of lower teeth or of the dark gap between
    them near the lower lip, so the middle of the opening cuts through the upper teeth (opening the jaw
    then splits them in two). Per column, the darkest row between a third of the way down the opening
    and near its bottom is the gap (or the shadow under the incisal edge); a parabola fitted robustly
    through those rows is the split.
    """
    lum = cv2.GaussianBlur(
        cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 0.8
    )
    xa, xb = float(up[0, 0]), float(up[-1, 0])
    n = max(4, int(abs(xb - xa)) + 1)
    t = np.linspace(0.0, 1.0, n)
    corner_a, corner_b = 0.5 * (up[0] + lo[0]), 0.5 * (up[-1] + lo[-1])
    cols = corner_a[0] + t * (corner_b[0] - corner_a[0])
    yu = curve(up, cols.astype(np.float32)).astype(np.float64)
    yl = curve(lo, cols.astype(np.float32)).astype(np.float64)
    fr = np.linspace(0.34, 0.92, 30)
    ys = yu[:, None] + fr[None, :] * (yl - yu)[:, None]
    xs = np.repeat(cols[:, None], len(fr), axis=1)
    prof = cv2.remap(
        lum, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    # a small preference for the middle of that range breaks ties in a flat (all-teeth) column
    prof = prof + 2.0 * np.abs(fr - 0.7)[None, :]
    share = fr[np.argmin(prof, axis=1)]
    # the line where the upper teeth end is smooth across the mouth: a robust parabola through the
    # columns' darkest rows (a dark gap between two teeth, or a shadowed canine, is an outlier)
    keep = np.ones(n, bool)
    for _ in range(3):
        c = np.polyfit(t[keep], share[keep], 2)
        fit = np.polyval(c, t)
        resid = np.abs(share - fit)
        keep = resid <= max(0.05, float(np.median(resid[keep])) * 2.5)
        if keep.sum() < 4:
            break
    share = np.clip(np.polyval(c, t), fr[0], fr[-1])
    split = np.stack([cols, yu + share * (yl - yu)], axis=1)
    split[0], split[-1] = corner_a, corner_b
    return split


_INPAINT_IOD = 64.0
"""Faces larger than this (inter-ocular distance, pixels) have their lip extension inpainted at a scale
that brings them to it."""


def lip_extended_source(rig: FaceRig) -> np.ndarray | None:
    """The portrait with the teeth and shadow next to the inner lip edge painted over in lip colour.

    The detector's inner-lip contour of a smiling, open mouth usually lies a pixel or two inside the
    teeth, so the lip triangles carry a sliver of tooth; when such a mouth is closed that sliver would
    show along the seam. Warping the lips from this image instead (in proportion to how far the mouth
    is closed) keeps the seam lip-coloured. None when the portrait's mouth is closed.
    """
    if not rig.mouth_open_source:
        return None
    img = rig.image
    h, w = img.shape[:2]
    v = rig.verts[:, :2].astype(np.float64)
    regions = lip_regions(img, v)
    colours = regions if regions is not None and regions.distinct else None
    inner = np.concatenate([v[T.LIP_INNER_UPPER], v[T.LIP_INNER_LOWER[::-1]]])
    # a band around the inner contour: the lips' inner edge and the opening's outer rim
    band = np.zeros((h, w), np.uint8)
    width = max(2, int(round(0.07 * rig.iod)))
    cv2.polylines(band, [np.round(inner).astype(np.int32)], True, (255,), thickness=width)
    if colours is not None:
        # ... and the whole opening: where the lips meet, the (upsampled) warp map may sample its middle
        r_lip, r_in = colours.lip, colours.opening
        edge = (band > 0) & (colours.lips | colours.hole) & (colours.redness < r_in + 0.75 * (r_lip - r_in))
        mask = (edge | colours.hole).astype(np.uint8) * 255
    else:
        hole = np.zeros((h, w), np.uint8)
        cv2.fillPoly(hole, [np.round(inner).astype(np.int32)], (255,))
        r_skin = float(redness(rig.skin_rgb))
        if regions is not None and regions.lip - r_skin >= LIP_CONTRAST:
            # red lips around an opening as red as they are (a painted mouth's dark red inside): the
            # opening and whatever in the band is not lip-red (the teeth's tops), filled from the lips.
            # The whole band reached past a thin upper lip and filled the seam from the skin above: a
            # beige bar between red lips
            teeth = (band > 0) & (regions.redness < r_skin + 0.5 * (regions.lip - r_skin))
            mask = np.maximum(teeth.astype(np.uint8) * 255, hole)
        else:
            # pale lips, or a blurred mouth, whose lips and teeth have no colour to tell them apart: the
            # whole band and the opening, filled from the lips around them
            mask = np.maximum(band, hole)
    if not mask.any():
        return None
    grown = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    # inpainting reads only a radius around the mask: run it on the mask's box and that margin
    radius = max(2, width)
    ys, xs = np.nonzero(grown)
    m = radius + 2
    y0, y1 = max(0, int(ys.min()) - m), min(h, int(ys.max()) + m + 1)
    x0, x1 = max(0, int(xs.min()) - m), min(w, int(xs.max()) + m + 1)
    out = img.copy()
    box = np.ascontiguousarray(img[y0:y1, x0:x1])
    hole = np.ascontiguousarray(grown[y0:y1, x0:x1])
    scale = min(1.0, _INPAINT_IOD / rig.iod)
    if scale < 0.75:
        # a large face: the fill is smooth, so it is made at a smaller scale (inpainting's cost grows with
        # the hole's area times the radius squared) and only the hole takes the scaled-up result
        bh, bw = hole.shape
        size = (max(1, round(bw * scale)), max(1, round(bh * scale)))
        small = cv2.resize(box, size, interpolation=cv2.INTER_AREA)
        small_hole = (cv2.resize(hole, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8) * 255
        filled = cv2.inpaint(small, small_hole, max(2, round(radius * scale)), cv2.INPAINT_TELEA)
        filled = cv2.resize(filled, (bw, bh), interpolation=cv2.INTER_LINEAR)
        out[y0:y1, x0:x1] = np.where(hole[..., None] > 0, filled, box)
    else:
        out[y0:y1, x0:x1] = cv2.inpaint(box, hole, radius, cv2.INPAINT_TELEA)
    return out
