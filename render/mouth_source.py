"""The portrait's own open mouth: its opening split into what moves with the skull (upper teeth) and
with the jaw, its teeth's colour, and the portrait with its lips extended over the teeth next to their
inner edge (for closing a smiling mouth)."""

from __future__ import annotations

import cv2
import numpy as np

from render import topology as T
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


_EDGE = 0.02  # the detector's inner-lip contour of an open mouth lies at least this far (IOD) inside the opening
_EDGE_SEARCH = 0.08  # ... and at most this far
_CORNER_FROM = 0.6  # from this share of the half-width out, the fill is kept from the opening's shadow
CORNER_REACH = 0.06  # the opening's shadow reaches this far (IOD) past the outer lip corners


def _lip_edge(
    img: np.ndarray, xs: np.ndarray, inner: np.ndarray, outer: np.ndarray, iod: float, d: float
) -> np.ndarray:
    """Per column ``xs``: how far (pixels) out from the inner contour ``inner`` towards the outer one
    ``outer`` the lip itself begins: the first two rows in a row whose brightness is the lip's (neither
    the teeth's nor the opening's), at least ``d`` and at most halfway to the outer contour."""
    sign = np.sign(outer - inner)
    sign[sign == 0] = 1.0
    span = np.abs(outer - inner)
    k = np.arange(max(3, int(np.ceil(_EDGE_SEARCH * iod))), dtype=np.float64)[:, None]
    rows = inner[None, :] + sign[None, :] * k
    # only the part of the picture the search reads
    h, w = img.shape[:2]
    x0, x1 = max(0, int(xs.min())), min(w, int(np.ceil(xs.max())) + 2)
    y0 = max(0, int(np.floor(min(rows.min(), outer.min()))) - 1)
    y1 = min(h, int(np.ceil(max(rows.max(), outer.max()))) + 2)
    grey = cv2.cvtColor(np.ascontiguousarray(img[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    xs = xs - x0
    rows = rows - y0
    inner, outer = inner - y0, outer - y0
    lum = cv2.remap(
        grey,
        np.ascontiguousarray(np.broadcast_to(xs[None, :], rows.shape), np.float32),
        rows.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    # the lip's brightness: the middle of the lip band, between its contours
    band = cv2.remap(
        grey,
        xs[None, :].astype(np.float32),
        (0.5 * (inner + outer))[None, :].astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    ref = float(np.median(band))
    tip = float(np.percentile(lum[:2], 90))  # the brightest at the contour: teeth when they show
    high = ref + 0.5 * (tip - ref) if tip > ref + 12.0 else 255.0
    ok = (lum > 0.6 * ref) & (lum < high)
    both = ok[:-1] & ok[1:]
    first = np.where(both.any(axis=0), np.argmax(both, axis=0), 0).astype(np.float64)
    if len(first) >= 5:
        # the lip's edge is smooth along the mouth: a lone column that found a tooth's gap is an outlier
        first = cv2.medianBlur(first.astype(np.float32)[None, :], 5)[0].astype(np.float64)
        # ... and a smooth line no nearer the opening than any column needs (a max over twice the
        # window, then the mean: every mean covers the column's own need)
        n = max(3, int(0.04 * iod) | 1)
        grown = cv2.dilate(first.astype(np.float32)[None, :], np.ones((1, 2 * n - 1), np.uint8))[0]
        first = np.convolve(np.pad(grown.astype(np.float64), n // 2, mode="edge"), np.ones(n) / n, mode="valid")
    return np.clip(np.maximum(first, d), 0.0, np.maximum(0.5 * span, d))


def lip_extended_source(rig: FaceRig) -> np.ndarray | None:
    """The portrait with its lips mirrored over their opening: each lip continues past its inner edge
    with its own texture, reflected, up to the middle of the opening; at the corners the skin beside the
    opening's shadow is mirrored over it.

    The detector's inner-lip contour of a smiling, open mouth usually lies a pixel or two inside the
    teeth, so the lip triangles carry a sliver of tooth (and the corners the opening's dark wedge); when
    such a mouth is closed those would show along the seam and past the corners. Warping the lips from
    this image instead (in proportion to how far the mouth is closed) keeps the seam the lips' own colour
    and the corners skin. None when the portrait's mouth is closed.
    """
    if not rig.mouth_open_source:
        return None
    img = rig.image
    h, w = img.shape[:2]
    v = rig.verts[:, :2].astype(np.float64)
    iu, il = v[T.LIP_INNER_UPPER], v[T.LIP_INNER_LOWER]
    ou, ol = v[T.LIP_OUTER_UPPER], v[T.LIP_OUTER_LOWER]
    d = max(1.0, _EDGE * rig.iod)
    reach = max(2.0, CORNER_REACH * rig.iod)
    # the corners in column order: (inner, outer) on the left, then on the right
    (ia, ib) = (iu[0], iu[-1]) if iu[0, 0] <= iu[-1, 0] else (iu[-1], iu[0])
    (oa, ob) = (ou[0], ou[-1]) if ou[0, 0] <= ou[-1, 0] else (ou[-1], ou[0])
    xa = max(0, int(np.floor(min(oa[0], ia[0]) - reach)))
    xb = min(w - 1, int(np.ceil(max(ob[0], ib[0]) + reach)))
    if xb - xa < 4:
        return None
    xs = np.arange(xa, xb + 1, dtype=np.float32)
    yiu, yil, you, yol = (curve(c, xs).astype(np.float64) for c in (iu, il, ou, ol))
    # between the inner corners: each lip's edge where, moving out from its contour, the picture turns
    # lip-toned (no lighter teeth, no darker opening); the lip's thickness beyond
    eu = np.maximum(yiu - _lip_edge(img, xs, yiu, you, rig.iod, d), you + 1.0)
    el = np.minimum(yil + _lip_edge(img, xs, yil, yol, rig.iod, d), yol - 1.0)
    mid = 0.5 * (yiu + yil)
    pu = np.maximum(1.0, 0.5 * (eu - you))
    pl = np.maximum(1.0, 0.5 * (yol - el))
    # in the corners (from the inner corner to past the outer one): a band around the line through the
    # corners that narrows to nothing, filled from the skin and lip above and below it
    xf = xs.astype(np.float64)
    # the corners' shadow, whose darkness is lifted: around the line through the corners, past the inner ones
    shade_top, shade_bottom = you - 1.0, yol + 1.0
    past = np.zeros_like(xf)  # 0 up to an outer corner, 1 half the reach past it (skin, not lip)
    for inner, outer, side in ((ia, oa, -1.0), (ib, ob, 1.0)):
        end = outer[0] + side * reach
        zone = (xf - inner[0]) * side > 0
        if not zone.any():
            continue
        k = int(np.argmin(np.abs(xf - inner[0])))
        half0 = 0.5 * max(yil[k] - yiu[k], 0.0) + d
        t = np.clip((end - xf) / (end - inner[0]), 0.0, 1.0)  # 1 at the inner corner, 0 at the end
        yc = inner[1] + (outer[1] - inner[1]) * np.clip((xf - inner[0]) / (outer[0] - inner[0] + 1e-6), 0.0, 1.0)
        half = half0 * t
        eu[zone], el[zone], mid[zone] = yc[zone] - half[zone], yc[zone] + half[zone], yc[zone]
        pu[zone] = pl[zone] = max(1.0, 0.03 * rig.iod)
        shade_top[zone] = np.minimum(shade_top, yc - 2 * reach)[zone]
        past = np.maximum(past, np.clip((xf - outer[0]) * side / (0.5 * reach), 0.0, 1.0))
        shade_bottom[zone] = np.maximum(shade_bottom, yc + 2 * reach)[zone]
    y0 = max(0, int(np.floor(min(eu.min(), shade_top.min()))) - 2)
    y1 = min(h, int(np.ceil(max(el.max(), shade_bottom.max()))) + 3)
    if y1 <= y0:
        return None
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    o_u = ys - eu[None, :]
    o_l = el[None, :] - ys
    fill = (o_u >= 0) & (o_l >= 0)
    lips = fill | ((ys >= shade_top[None, :]) & (ys <= shade_bottom[None, :]))
    if not fill.any():
        return None

    # one reflection, stretched over the fill: the rows next to the edge mirrored nearby, the lip's
    # inner part spread to the middle (a repeated reflection striped the fill with the lip's highlights)
    from_up = eu[None, :] - np.clip(o_u / np.maximum(mid - eu, 1.0)[None, :], 0.0, 1.0) * pu[None, :]
    from_lo = el[None, :] + np.clip(o_l / np.maximum(el - mid, 1.0)[None, :], 0.0, 1.0) * pl[None, :]
    mx = np.ascontiguousarray(np.broadcast_to(xs[None, :], ys.shape[:1] + xs.shape))

    def sample(my: np.ndarray) -> np.ndarray:
        return cv2.remap(
            img, mx, np.where(fill, my, ys).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    up, lo = sample(from_up), sample(from_lo)
    region = img[y0:y1, xa : xb + 1]
    got = np.where(fill[..., None], np.where((ys < mid[None, :])[..., None], up, lo), region)
    # towards the corners the lips above and below the opening lie in its shadow too (the contour cuts
    # the corners short): there the fill takes the lighter of the two, and nothing on the lips stays
    # much darker than they are
    centre, half_w = 0.5 * (ia[0] + ib[0]), max(0.5 * (ib[0] - ia[0]), 1.0)
    wz = np.clip((np.abs(xf - centre) / half_w - _CORNER_FROM) / (1.0 - _CORNER_FROM), 0.0, 1.0)
    wz = np.where(lips, wz[None, :], 0.0)[..., None].astype(np.float32)
    lighter = np.where((up.sum(axis=2) >= lo.sum(axis=2))[..., None], up, lo)
    g = got.astype(np.float32)
    g += (lighter.astype(np.float32) - g) * (wz * fill[..., None])
    lip = np.asarray(rig.lip_rgb, np.float32)
    floor = 0.8 * float(lip.mean())
    tone = lip + past[None, :, None].astype(np.float32) * (np.asarray(rig.skin_rgb, np.float32) - lip)
    lift = wz * np.clip((floor - g.mean(axis=2, keepdims=True)) / max(0.25 * floor, 1.0), 0.0, 1.0)
    g += (tone - g) * lift
    # and nothing in the fill as bright as the teeth (a tooth the edge search stepped past)
    lum = g.mean(axis=2)
    lip_lum = float(np.median(lum[lips & ~fill])) if (lips & ~fill).any() else float(lip.mean())
    src_teeth = float(np.percentile(region.mean(axis=2)[fill], 90))  # what the fill covers: teeth, if any
    if src_teeth > lip_lum + 12.0:
        thr = lip_lum + 0.4 * (src_teeth - lip_lum)
        w_t = np.clip((lum - thr) / (0.2 * (src_teeth - lip_lum)), 0.0, 1.0) * fill
        g += (lip - g) * w_t[..., None]
    got = np.clip(g + 0.5, 0, 255).astype(np.uint8)
    # and no light specks left in it (the tip of a tooth in a lip's shadow, mirrored into the fill): what
    # stands out above the fill around it takes that surrounding's median
    k = max(5, int(0.06 * rig.iod) | 1)
    med = cv2.medianBlur(got, k)
    speck = lips & (got.astype(np.float32).mean(axis=2) > med.astype(np.float32).mean(axis=2) + 10.0)
    got[speck] = med[speck]
    out = img.copy()
    out[y0:y1, xa : xb + 1] = got
    return out
