# Over 400 lines: one idea, the shut-lid painter (lid fill, crease, lashes) and the helpers only it uses.
"""Closed lids: what the warp alone cannot do when an eye shuts.

Warping slides the upper lid over the eyeball, but the lid skin it stretches carries the portrait's
lash line and lid rim along with it, and those dark bands squeezed together read as a narrow *open*
eye (to people and to landmark detectors alike). A real closed lid is smooth skin continuous with the
skin around the eye, a little darker towards the closure, with the lashes as one thin dark line.

So, once per rig, each eye gets a *lid patch*: the eye opening, its lash bands and the lid fold are
filled with skin, column by column, from the skin just above and just below them (medians over a few
pixels of the skin with its thin dark lines closed away, so stray lashes and the ends of the crease
neither leak in nor outline the fill; a low brow's hairs do not count as skin), plus the fine texture
of the skin above the eye, mirrored onto the lid. A fill built this way meets the portrait without an
edge on every side: a fill lighter or darker than its surroundings would outline an almond, which is
what an open eye looks like. Per
frame the patch follows the eye corners and replaces the area the lid has swept, in proportion to
the blink; its top fades in above the fill (a patch edge there would read as a second crease). Below
its top the fill takes the tone of the lid skin that the open eye shows (in a shadowed socket the skin
above the fill is the shadow, and a lid toned from it shut into a dark smudge). The
lashes hang from the lid's moving edge as a soft wedge, thickest past the middle of the eye and
thinner at the corners, dark at the lid's margin and thinning out below it where the lashes hang
apart, as they are on a real shut eye (compared with frames of a filmed blink of the same face).
The crease above stays where it is (the rig's weights confine what a closing lid
drags along), as on a real eye, where the lid unfolds below it; and its line fades as the lid shuts:
the skin stretched over the eyeball flattens the fold (a filmed shut eye shows at most a faint
crease; left in place it outlined the shut lid like a second eye). The lashes are a dark line with
short strands hanging from it, down and out (a lash's width apart, up to 1.5 times the line's
thickness long), fixed per eye so they do not flicker. A shut lid also covers the lower lid's rim
just under its edge, which the lashes of a real shut eye hide. What lies in front of the lid, a glasses
frame's rim or a strand of hair (thin dark lines much wider than the eye), is kept in the patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from render import topology as T
from render.geometry import apply, clamp, fill_columns, similarity, soft_around, sorted_by_x
from render.rig import FaceRig

_SHIFT = 3
_START = 0.05  # blinks below this leave the warp alone
_FOLD = 0.01  # the lid fold above the open eye that a shut lid unfolds, in inter-ocular distances
_LASH = 0.04  # greatest thickness of a shut lid's lash line, in inter-ocular distances
_LASH_MIN = 0.2  # and this share of it at the corners
_LASH_PEAK = 1.6  # the lash line is thickest at 0.5 ** (1 / this) of the way from the inner corner
_LASH_MARGIN = 0.15  # the lash line is darkest down to this share of its thickness below the lid's edge ...
_LASH_TAIL = 0.35  # ... and thins to this share of its darkness at its lower end, where the lashes hang apart
_BAND = 0.07  # the lash bands above and below the opening, in inter-ocular distances
_BELOW = 0.07  # a shut lid covers this far below its edge (the lower lid's rim), in inter-ocular distances
_CORNER_W = 0.14  # the lid patch's fill reaches half this past the eye's corners (inter-ocular distances)
_CORNER_REACH = 0.07  # a shut lid's patch reaches this far past the eye's corners (inter-ocular distances)
_FEATHER = 0.02  # the swept area's top fades in over twice this, in inter-ocular distances
_STRAND_GAP = 0.012  # lash strands of a shut lid, this far apart along the lid (inter-ocular distances)
_STRAND_WIDTH = 0.008  # and this thick
_CREASE = 0.16  # above the fill, the lid's crease unfolds over this height as the eye shuts (inter-ocular distances)
_CREASE_BLEND = 0.03  # ... the tones above and below it blending over this (inter-ocular distances)
_BROW_GAP = 0.03  # ... and staying this far below the brow's lower edge (inter-ocular distances)
_NEAR_DARK = 0.12  # a shut lid darkens this much towards its edge
_CLEAN = 0.06  # dark lines thinner than this are cleaned from the skin around a shut lid (inter-ocular distances)
_FRONT_LINE = 0.08  # lines in front of the eye (a glasses frame) are found up to this thick (inter-ocular distances)
_FRONT_DARK = 0.25  # ... and this much darker than the skin
_FRONT_WIDE = 1.5  # ... in connected lines at least this many eye widths wide
_OVERHANG = 0.3  # when less than this share of the lid's top edge borders skin ...
_OVERHANG_MIX = 0.5  # ... the shut lid's top takes this share of the dark above it
_LID_SPAN = 0.15  # the open eye's lid skin is looked for this far above the opening (inter-ocular distances)
_LID_PCT = 70.0  # ... as the pixels lighter than this percentile there (not its lashes, crease or shadow)
_LID_RISE = 0.3  # a shut lid turns from the tone above it to that lid tone over this share of its height
_LID_MIX = 2.0  # a shut lid's tone, top to bottom: the skin above the eye blended into the skin below it


@dataclass
class _Eye:
    upper: list[int]
    lower: list[int]
    corners: tuple[int, int]
    brow: list[int]  # the brow's lower edge: the unfolding crease stays below it
    patch: np.ndarray  # (h, w, 3) float32: the closed-lid skin in portrait coordinates
    origin: np.ndarray  # (2,) portrait pixel of the patch's top-left corner
    lash_rgb: np.ndarray  # (3,) tone of the lash line
    strands: np.ndarray  # (n, 3): each lash strand's place along the lid (0..1), length and tilt factors


def eyes_soft(rig: FaceRig) -> float:
    """The picture's softness around the eyes (``soft_around``): drawn lids, lashes and eyeballs match it."""
    v0 = rig.verts[:, :2].astype(np.float64)
    return soft_around(rig.image, v0[T.R_EYE_UPPER + T.L_EYE_UPPER + T.R_BROW + T.L_BROW], 0.3 * rig.iod)


class EyePainter:
    def __init__(self, rig: FaceRig, soft: float | None = None) -> None:
        """``soft``: ``eyes_soft(rig)``, when the caller has it already."""
        self.rig = rig
        v0 = rig.verts[:, :2].astype(np.float64)
        self.v0 = v0
        self.eyes = [
            _make_eye(rig.image, v0, up, lo, corners, brow, rig.iod)
            for up, lo, corners, brow in (
                (T.R_EYE_UPPER, T.R_EYE_LOWER, (33, 133), T.R_BROW[5:]),
                (T.L_EYE_UPPER, T.L_EYE_LOWER, (263, 362), T.L_BROW[5:]),
            )
        ]
        self.painted: list[tuple[int, int, int, int]] = []  # the boxes (x0, y0, x1, y1) the last paint drew in
        self.soft = eyes_soft(rig) if soft is None else soft

    def paint(self, out: np.ndarray, vt: np.ndarray, blinks: tuple[float, float]) -> None:
        """Shut lids in ``out`` (in place); ``blinks`` = (right, left) closure 0..1."""
        iod = self.rig.iod
        h, w = out.shape[:2]
        self.painted = []
        for eye, b in zip(self.eyes, blinks):
            if b < _START:
                continue
            corners = list(eye.corners)
            to_out = similarity(self.v0[corners], vt[corners])  # portrait -> frame, follows the head
            open_up = apply(to_out, self.v0[eye.upper])
            lid_edge = vt[eye.upper].copy()
            lower = vt[eye.lower]
            # the swept area: from a little above where the open lid's lashes were down to the lid's
            # edge; as the eye shuts it reaches below the edge over the lower lashes too
            up_dir = _normal_up(to_out)
            # the top of the area the patch covers: the fill's top plus the crease above it, which unfolds
            unfold = _CREASE * iod * _ramp(b, 0.2, 0.9)
            top = open_up + up_dir * ((_BAND + _FOLD) * iod + unfold)
            # ... below the brow, both the portrait's (what the patch holds) and this frame's
            for brow in (apply(to_out, self.v0[eye.brow]), vt[eye.brow]):
                top[:, 1] = np.maximum(top[:, 1], np.interp(top[:, 0], *sorted_by_x(brow)) + _BROW_GAP * iod)
            below = lid_edge - up_dir * (_BELOW * iod * _ramp(b, 0.5, 0.95))
            feather = max(1.0, _FEATHER * iod)
            # ... and a little past the corners, where the open eye's corners showed white
            ends = _CORNER_REACH * iod * _ramp(b, 0.3, 0.9)
            poly = np.concatenate([_stretch_ends(top, ends + 0.5 * unfold), _stretch_ends(below, ends)[::-1]])
            room = 4 + int(np.ceil(2.5 * self.soft))  # (for the blur of a soft picture's lid and lashes)
            x0 = max(0, int(np.floor(min(poly[:, 0].min(), lower[:, 0].min()))) - room)
            y0 = max(0, int(np.floor(poly[:, 1].min())) - room)
            x1 = min(w, int(np.ceil(max(poly[:, 0].max(), lower[:, 0].max()))) + room + 1)
            y1 = min(h, int(np.ceil(max(poly[:, 1].max(), lower[:, 1].max()) + _LASH * iod)) + room + 1)
            if x1 <= x0 or y1 <= y0:
                continue
            self.painted.append((x0, y0, x1, y1))
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            p = np.round((poly - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
            cv2.fillPoly(m, [p], (255,), lineType=cv2.LINE_AA, shift=_SHIFT)
            blur = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), max(0.7, 0.012 * iod, self.soft))
            # the top fades in over the lower part of the unfolding crease's band: a closed lid has no edge
            # where the fold was, and above the fill the patch is the portrait's skin with its thin dark
            # lines closed away, so the crease fades out as the lid shuts while the skin stays the portrait's
            xs = np.arange(x0, x1)
            ys = np.arange(y0, y1, dtype=np.float32)[:, None]
            top_y = np.interp(xs, *sorted_by_x(top)).astype(np.float32)[None, :]
            fade = np.clip((ys - top_y) / (0.4 * unfold + 2.0 * feather), 0.0, 1.0)
            alpha = np.asarray(blur, np.float32) * (fade * fade * (3 - 2 * fade)) * _ramp(b, _START, 0.3)
            # the lid patch, carried from the portrait into this frame's ROI
            aff = to_out.copy()
            aff[:, 2] += aff[:, :2] @ eye.origin - [x0, y0]
            skin = cv2.warpAffine(
                eye.patch, aff, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            # a closed lid curves away from the light towards its edge: a little darker there
            edge_y = np.interp(xs, *sorted_by_x(lid_edge)).astype(np.float32)[None, :]
            near = np.clip(1.0 - (edge_y - ys) / max(1.0, 0.06 * iod), 0.0, 1.0)
            closing = _ramp(b, 0.3, 0.9)
            shade = (1.0 - _NEAR_DARK * near * closing)[..., None]
            a = alpha[..., None]
            roi = out[y0:y1, x0:x1].astype(np.float32) * (1.0 - a) + np.asarray(skin, np.float32) * shade * a
            # the lashes: a dark wedge hanging from the lid's edge, thickest past the middle of the eye
            # and thin at the inner corner; they gather into a thicker line as the lid shuts
            outer, inner = vt[corners[0]], vt[corners[1]]
            axis = outer - inner
            along = np.clip((lid_edge - inner) @ axis / max(1e-9, float(axis @ axis)), 0.0, 1.0)
            profile = _LASH_MIN + (1.0 - _LASH_MIN) * np.sin(np.pi * along**_LASH_PEAK)
            thick = (_LASH * iod * (0.6 + 0.4 * _ramp(b, 0.5, 1.0)) * profile)[:, None]
            wedge = np.concatenate([lid_edge + up_dir * (0.25 * thick), (lid_edge - up_dir * (0.75 * thick))[::-1]])
            lm = np.zeros_like(m)
            pl = np.round((wedge - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
            cv2.fillPoly(lm, [pl], (255,), lineType=cv2.LINE_AA, shift=_SHIFT)
            # dark at the lid's margin, thinning out below it where the lashes hang apart (dark all
            # through, the wedge reads as a drawn bar)
            xs_e, order = lid_edge[:, 0], np.argsort(lid_edge[:, 0])
            th_x = np.interp(xs, xs_e[order], thick[order, 0]).astype(np.float32)[None, :]
            depth = (ys - edge_y) / np.maximum(th_x, 1.0)
            body = np.clip(1.0 - (1.0 - _LASH_TAIL) * (depth - _LASH_MARGIN) / (0.75 - _LASH_MARGIN), _LASH_TAIL, 1.0)
            sm = np.zeros_like(m)
            _draw_strands(sm, eye.strands, lid_edge, along, thick[:, 0], up_dir, (x0, y0), b, iod)
            lashes = np.maximum(lm.astype(np.float32) * body, sm.astype(np.float32))
            soft = max(0.7, 0.008 * iod, self.soft)  # lashes are a soft line, on a large face too
            line = np.asarray(cv2.GaussianBlur(lashes / 255.0, (0, 0), soft), np.float32)
            la = line * (0.9 * _ramp(b, _START, 0.5))
            roi = roi * (1.0 - la[..., None]) + eye.lash_rgb[None, None, :] * la[..., None]
            out[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)


def _make_eye(
    img: np.ndarray,
    v0: np.ndarray,
    up: list[int],
    lo: list[int],
    corners: tuple[int, int],
    brow: list[int],
    iod: float,
) -> _Eye:
    """Fill the eye opening, its lash bands and the lid fold with lid skin, in the portrait's pixels."""
    h, w = img.shape[:2]
    opening = np.concatenate([v0[up], v0[lo][::-1]])
    pad = 0.3 * iod
    # (clamped to the image, and at least a pixel: a face made from a few user points can put an eye
    # outside the picture)
    x0 = min(w - 1, max(0, int(np.floor(opening[:, 0].min() - pad))))
    y0 = min(h - 1, max(0, int(np.floor(opening[:, 1].min() - pad))))
    x1 = max(x0 + 1, min(w, int(np.ceil(opening[:, 0].max() + pad)) + 1))
    y1 = max(y0 + 1, min(h, int(np.ceil(opening[:, 1].max() + pad)) + 1))
    roi = np.ascontiguousarray(img[y0:y1, x0:x1]).astype(np.float32)
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(opening - [x0, y0]).astype(np.int32)], (255,))
    # the lash bands above and below the opening (the mesh's contour often sits inside the lashes),
    # a little past the corners, and the lid fold above: a shut lid is unfolded, its crease shallow
    kh = max(3, int(round(2 * _BAND * iod)) | 1)
    kw = max(3, int(round(_CORNER_W * iod)) | 1)
    hole = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kw, kh))) > 0
    up_px = max(1, int(round(_FOLD * iod)))
    hole = cv2.dilate(hole.astype(np.uint8), np.ones((up_px, 1), np.uint8), anchor=(0, 0)) > 0
    # the crease above the fill, which unfolds as the lid shuts ...
    up_px = max(1, int(round(_CREASE * iod)))
    unfolds = cv2.dilate(hole.astype(np.uint8), np.ones((up_px, 1), np.uint8), anchor=(0, 0)) > 0
    # ... up to a little below the brow, whose hairs are no crease
    bx, by = sorted_by_x(v0[brow] - [x0, y0])
    below_brow = np.arange(y1 - y0)[:, None] > (np.interp(np.arange(x1 - x0), bx, by) + _BROW_GAP * iod)[None, :]
    patch = _fill_lid(roi, hole, iod, unfolds & below_brow, mask > 0)
    # what lies in front of the lid stays: a glasses frame, a strand of hair
    front = _in_front(roi, hole, iod, float(np.linalg.norm(v0[corners[0]] - v0[corners[1]])))[..., None]
    patch = patch * (1.0 - front) + roi * front
    # lashes: the portrait's darkest lash pixels, and in any case well darker than the lid, or the
    # closed eye has no line to read
    skin = patch[hole].mean(axis=0) if hole.any() else np.full(3, 128.0)
    lash = np.minimum(_darkest_along(img, v0[up]), 0.4 * skin)
    # the lashes' strands: fixed per eye, so they do not flicker from frame to frame
    n = max(8, int(round(float(np.linalg.norm(v0[corners[0]] - v0[corners[1]])) / max(1.0, _STRAND_GAP * iod))))
    rng = np.random.default_rng(int(v0[corners[0]].sum() * 31) & 0xFFFF)
    strands = np.stack(
        [np.sort(rng.uniform(0.02, 0.98, n)), rng.uniform(0.8, 1.5, n), rng.uniform(-0.5, 0.5, n)], axis=1
    )
    return _Eye(list(up), list(lo), corners, list(brow), patch, np.array([x0, y0], np.float64), lash, strands)


def _in_front(roi: np.ndarray, hole: np.ndarray, iod: float, eye_w: float) -> np.ndarray:
    """Soft mask (h, w) of the thin dark lines around the eye that are no part of it: a glasses frame,
    a strand of hair. A shut lid's patch fills the skin around the eye with those lines closed away,
    and a frame's rim across the lid vanished while the eye was shut.

    Lines are pixels well darker than the portrait's grey closing (lines thinner than
    ``_FRONT_LINE``); those in connected lines wider than ``_FRONT_WIDE`` eye widths pass in front
    of the eye (the eye's own lines, its lashes, lid rims and crease, are about an eye wide), outside
    the opening and its lash bands (which the lid covers whatever lies there).
    """
    lum = roi.mean(axis=2)
    k = max(3, int(round(_FRONT_LINE * iod)) | 1)
    closed = cv2.morphologyEx(lum, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    skin = float(np.percentile(lum, 75))
    line = ((closed - lum) > max(20.0, _FRONT_DARK * skin)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(line, connectivity=8)
    wide = np.flatnonzero(stats[:, cv2.CC_STAT_WIDTH] >= _FRONT_WIDE * eye_w)
    wide = wide[wide > 0]
    if len(wide) == 0:
        return np.zeros(lum.shape, np.float32)
    lines = (np.isin(labels, wide) & ~hole).astype(np.uint8)
    front = cv2.dilate(lines, np.ones((3, 3), np.uint8)).astype(np.float32)
    return np.asarray(cv2.GaussianBlur(front, (0, 0), max(0.6, 0.006 * iod)), np.float32)


def _fill_lid(
    roi: np.ndarray,
    hole: np.ndarray,
    iod: float,
    crease: np.ndarray | None = None,
    opening: np.ndarray | None = None,
) -> np.ndarray:
    """A closed lid over ``hole``: per column, the skin above blended into the skin below, plus grain.

    The tones at each column's ends are medians over a few pixels beyond the hole, smoothed along the
    eye, so a stray lash or a catchlight does not streak the lid; above it only skin counts (not a low
    brow's hairs). Given the ``opening`` (the open eye), the lid below its top takes the tone of the lid
    skin the open eye shows above it (the lighter part of each column there, not its lashes, crease or
    the socket's shadow): a shut lid is that skin stretched over the eyeball, and in a shadowed socket the
    tone above the hole is the shadow's. ``crease``: the band above the hole where the lid's fold unfolds
    as it shuts, given the skin around it with its thin dark lines closed away and its tones blended.
    """
    hh, ww = hole.shape
    reach = max(2, int(round(0.05 * iod)))
    cols = np.flatnonzero(hole.any(axis=0))
    if len(cols) == 0:
        return roi.copy()
    # the skin around the hole without its thin dark lines (stray lashes, the crease's ends at the
    # corners): a grey closing. The fill's tones come from it, and the fill meets it, not the raw
    # portrait, so no remnant of a lash line outlines the shut lid
    kc = max(3, int(round(_CLEAN * iod)) | 1)
    clean = cv2.morphologyEx(roi, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kc, kc)))
    clean = np.asarray(clean, np.float32)
    ring_px = max(2, int(round(_CLEAN * iod)))
    near = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring_px + 1,) * 2))
    if crease is not None:
        near = np.maximum(near, crease.astype(np.uint8))
    # a closing lifts textured skin too (by about its grain): take that lift off, keep the lines' removal
    around = (near > 0) & ~hole
    if around.any():
        clean = clean - np.median((clean - roi)[around], axis=0).astype(np.float32)
    near_w = cv2.GaussianBlur(near.astype(np.float32), (0, 0), max(0.8, 0.5 * ring_px))[..., None]
    # the skin's own texture (pores, fine lines, a photo's grain): its detail around the eye
    band = max(2, int(round(0.06 * iod)))
    detail = roi - cv2.GaussianBlur(roi, (0, 0), max(0.8, 0.012 * iod))
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((band, band), np.uint8)).astype(bool) & ~hole
    # (the ring holds brows and lashes too, whose edges are no skin grain: a low share of its median)
    amp = float(np.median(np.abs(detail[ring]))) * 0.7 if ring.any() else 0.0
    grain = _skin_texture(detail.mean(axis=2), roi, clean, hole, around, iod, amp, (hh, ww))
    base = roi * (1 - near_w) + (clean + grain[..., None]) * near_w
    if crease is not None:
        # the unfolded crease: where the lid's fold was, the tones above and below it (a lid band in
        # eyeshadow under a bare brow, say) meet in a gradient, not in the step the fold's line hid
        soft = cv2.GaussianBlur(clean, (0, 0), max(1.0, _CREASE_BLEND * iod))
        cw = cv2.GaussianBlur((crease & ~hole).astype(np.float32), (0, 0), max(0.8, 0.5 * ring_px))[..., None]
        base = base * (1 - cw) + (np.asarray(soft, np.float32) + grain[..., None]) * cw
    out = base.copy()
    tops = np.zeros(len(cols), np.int64)
    bots = np.zeros(len(cols), np.int64)
    top_rgb = np.zeros((len(cols), 3), np.float32)
    bot_rgb = np.zeros((len(cols), 3), np.float32)
    # skin, not hair: a low brow can border the fill's top, and a lid toned like the brow is a dark smudge
    lum = clean.mean(axis=2)
    skin_min = 0.55 * float(np.percentile(lum[around], 75)) if around.any() else 0.0
    top_ok = np.ones(len(cols), bool)
    overhang = np.zeros((len(cols), 3), np.float32)  # the raw tone above, hair or shadow
    for i, x in enumerate(cols):
        ys = np.flatnonzero(hole[:, x])
        t, b = int(ys[0]), int(ys[-1])
        tops[i], bots[i] = t, b
        above = clean[max(0, t - reach) : t, x]
        overhang[i] = np.median(above, axis=0) if len(above) else clean[t, x]
        above = above[lum[max(0, t - reach) : t, x] >= skin_min]
        below = clean[b + 1 : min(hh, b + 1 + reach), x]
        top_ok[i] = len(above) > 0
        top_rgb[i] = np.median(above, axis=0) if len(above) else clean[t, x]
        bot_rgb[i] = np.median(below, axis=0) if len(below) else clean[b, x]
    if top_ok.any():
        fill_columns(top_rgb, cols, top_ok)
    else:
        skin_px = around & (lum >= skin_min)
        if skin_px.any():
            top_rgb[:] = np.median(clean[skin_px], axis=0)  # no skin above at all: the skin around the eye
    if top_ok.mean() < _OVERHANG:
        # dark above nearly all along the eye: a deep-set eye under a heavy brow, whose lid shuts in the
        # brow's shadow (toned from the few skin columns alone it was a pale patch, which dlib read as an
        # open eye's white)
        top_rgb = (1.0 - _OVERHANG_MIX) * top_rgb + _OVERHANG_MIX * overhang
    lid_rgb = top_rgb.copy()
    lid_ok = np.zeros(len(cols), bool)
    if opening is not None:
        allowed = (hole | crease) & ~opening if crease is not None else hole & ~opening
        span_px = max(3, int(round(_LID_SPAN * iod)))
        for i, x in enumerate(cols):
            oy = np.flatnonzero(opening[:, x])
            if len(oy) == 0:
                continue
            y_hi = int(oy[0])
            seg_rows = np.arange(max(0, y_hi - span_px), y_hi)
            seg_rows = seg_rows[allowed[seg_rows, x]]
            if len(seg_rows) < 2:
                continue
            seg = clean[seg_rows, x]
            sl = seg.mean(axis=1)
            lid_rgb[i] = np.median(seg[sl >= np.percentile(sl, _LID_PCT)], axis=0)
            lid_ok[i] = True
        if lid_ok.any():  # (columns past the opening's ends: the nearest lid tone)
            fill_columns(lid_rgb, cols, lid_ok)
    k = max(1.0, 0.04 * iod)
    lid_rgb = cv2.GaussianBlur(lid_rgb[None], (0, 0), k, borderType=cv2.BORDER_REPLICATE)[0]
    top_rgb = cv2.GaussianBlur(top_rgb[None], (0, 0), k, borderType=cv2.BORDER_REPLICATE)[0]
    bot_rgb = cv2.GaussianBlur(bot_rgb[None], (0, 0), k, borderType=cv2.BORDER_REPLICATE)[0]
    for i, x in enumerate(cols):
        t, b = tops[i], bots[i]
        f = ((np.arange(t, b + 1, dtype=np.float32) - t + 0.5) / (b - t + 1.0))[:, None]
        # the lid is mostly upper-lid skin: keep the upper tone over most of the span
        f = f**_LID_MIX
        g = np.clip((np.arange(t, b + 1, dtype=np.float32)[:, None] - t) / max(1.0, _LID_RISE * (b - t)), 0.0, 1.0)
        g = g * g * (3 - 2 * g)
        upper = top_rgb[i] * (1.0 - g) + lid_rgb[i] * g
        span = upper * (1.0 - f) + bot_rgb[i] * f
        sel = hole[t : b + 1, x]
        out[t : b + 1, x][sel] = span[sel]
    out[hole] += grain[hole][:, None]
    # soften the seam where the fill meets the skin around it (the fill's tones are that skin's, so only
    # a thin band; blending the fill with what the hole covered would bring back a dark lash outline)
    sigma = max(0.8, 0.015 * iod)
    seam = np.abs(cv2.GaussianBlur(hole.astype(np.float32), (0, 0), sigma) - hole.astype(np.float32))
    w = np.clip(seam * 4.0, 0.0, 1.0)[..., None]
    return (out * (1 - w) + cv2.GaussianBlur(out, (0, 0), sigma) * w).astype(np.float32)


def _skin_texture(
    detail: np.ndarray,
    roi: np.ndarray,
    clean: np.ndarray,
    hole: np.ndarray,
    around: np.ndarray,
    iod: float,
    amp: float,
    shape: tuple[int, int],
) -> np.ndarray:
    """The fine texture (h, w) laid over a shut lid and the skin cleaned around it: the portrait's own.

    Each pixel keeps its own detail (``detail``: the luminance's high-pass) where that is skin; in the
    hole and on the thin dark lines cleaned away around it, it takes the detail of the skin mirrored
    across the hole's top (the brow bone's and lid's skin above the eye) or, failing that, across its
    bottom; noise of the skin's strength only where neither is skin. A lid filled with smooth tones and
    synthetic noise reads as a flat patch of make-up on textured skin.
    """
    hh, ww = shape
    lum = clean.mean(axis=2)
    # lashes, the lid rims, the crease, stray hairs (and a pixel around them): kept, they would outline
    # the shut lid as an open eye
    lines = (clean - roi).mean(axis=2) > max(4.0, 1.5 * amp)
    lines = cv2.dilate(lines.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    skin_min = 0.55 * float(np.percentile(lum[around], 75)) if around.any() else 0.0
    ok = ~hole & ~lines & (roi.mean(axis=2) >= skin_min)
    ok = cv2.erode(ok.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # (not the edge of a line or a brow)
    lim = max(1.0, 5.0 * amp)
    d = np.clip(detail, -lim, lim).astype(np.float32)
    rows = np.arange(hh)[:, None]
    any_hole = hole.any(axis=0)
    top = np.where(any_hole, np.argmax(hole, axis=0), 0)[None, :]
    bot = np.where(any_hole, hh - 1 - np.argmax(hole[::-1], axis=0), hh - 1)[None, :]
    cols = np.broadcast_to(np.arange(ww)[None, :], (hh, ww))
    out = np.where(ok, d, np.nan).astype(np.float32)
    for mirror in (2 * top - 1 - rows, 2 * bot + 1 - rows):
        src = np.clip(mirror, 0, hh - 1)
        valid = (mirror >= 0) & (mirror < hh) & ok[src, cols]
        fill = np.isnan(out) & valid
        out[fill] = d[src, cols][fill]
    rest = np.isnan(out)
    if rest.any():
        rng = np.random.default_rng(int(hh * 7919 + ww))
        noise = cv2.GaussianBlur(rng.standard_normal((hh, ww)).astype(np.float32), (0, 0), max(0.6, 0.006 * iod))
        strength = float(np.std(d[ok])) if np.count_nonzero(ok) > 20 else amp
        noise = np.asarray(noise, np.float32) * (strength / max(1e-6, float(np.std(noise))))
        out[rest] = noise[rest]
    return out


def _draw_strands(
    mask: np.ndarray,
    strands: np.ndarray,
    edge: np.ndarray,
    along: np.ndarray,
    thick: np.ndarray,
    up_dir: np.ndarray,
    origin: tuple[int, int],
    b: float,
    iod: float,
) -> None:
    """Lash strands into ``mask``: short lines from the lid's edge, down and out, longer at the middle."""
    o = np.argsort(along)
    al, ex, ey, th = along[o], edge[o, 0], edge[o, 1], thick[o]
    t = strands[:, 0]
    bx, by = np.interp(t, al, ex), np.interp(t, al, ey)
    length = np.interp(t, al, th) * strands[:, 1] * _ramp(b, 0.3, 1.0)
    # lashes point down, tilted towards the outer corner more the further out they grow
    out_dir = edge[o[-1]] - edge[o[0]]
    out_dir = out_dir / max(1e-9, float(np.linalg.norm(out_dir)))
    tilt = (0.15 + 0.5 * t + 0.2 * strands[:, 2])[:, None]
    d = -up_dir[None, :] + tilt * out_dir[None, :]
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    p0: np.ndarray = np.stack([bx, by], axis=1) - np.array(origin, np.float64)
    p1 = p0 + d * length[:, None]
    segments = np.round(np.stack([p0, p1], axis=1) * (1 << _SHIFT)).astype(np.int32)  # (n, 2, 2)
    width = max(1, int(round(_STRAND_WIDTH * iod)))
    cv2.polylines(mask, list(segments), False, (220,), width, cv2.LINE_AA, _SHIFT)


def _stretch_ends(line: np.ndarray, d: float) -> np.ndarray:
    """``line`` (corner to corner) with both end points moved ``d`` pixels further out along the eye."""
    out = line.copy()
    axis = line[-1] - line[0]
    axis = axis / max(1e-9, float(np.linalg.norm(axis)))
    out[0] -= axis * d
    out[-1] += axis * d
    return out


def _normal_up(aff: np.ndarray) -> np.ndarray:
    """The portrait's 'up' (0, -1) carried into the frame by the head's similarity, unit length."""
    u = aff[:, :2] @ np.array([0.0, -1.0])
    return u / max(1e-9, float(np.linalg.norm(u)))


def _ramp(x: float, a: float, b: float) -> float:
    t = clamp((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _darkest_along(img: np.ndarray, line: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    xs = np.clip(np.round(line[:, 0]).astype(int), 0, w - 1)
    ys = np.clip(np.round(line[:, 1]).astype(int), 0, h - 1)
    px = img[ys, xs].astype(np.float64)
    order = np.argsort(px.sum(axis=1))
    return px[order[: max(1, len(order) // 3)]].mean(axis=0) * 0.8
