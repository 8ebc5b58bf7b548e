# Over 400 lines: one idea, the per-frame warp (mesh, triangle ranks, affine maps, remap) of one renderer.
"""The default renderer: a landmark-driven dense warp of the portrait.

Per frame: channels -> target mesh (``deform``) -> one batched solve for every triangle's affine map
(target -> source) -> a triangle-id raster of the moved region (every triangle in one vectorized pass)
-> a dense backward map -> ``cv2.remap`` of the pixels that move.
Eye and mouth openings are not stretched: eye openings sample the eyeball rigidly (lids slide over
it), and the mouth opening is painted by ``render.mouth`` (teeth, cavity, tongue).
"""

from __future__ import annotations

import cv2
import numpy as np

from motion.types import CHANNEL_INDEX, CHANNELS
from render import topology as T
from render.deform import RigPose, lid_raise, lip_rounding, rig_lip_gap
from render.eyeball import EyeballPainter
from render.eyes import EyePainter, eyes_soft
from render.geometry import clamp, similarity
from render.mouth import MouthPainter, lip_extended_source
from render.mouth_source import CORNER_REACH
from render.rig import KIND_EYE_L, KIND_EYE_R, KIND_FACE, KIND_MOUTH, KIND_OUTER, MAX_LIP_GAP_IOD, FaceRig

_MOVED_PX = 0.05  # vertices that move less than this are treated as still
GAZE_PX = (0.16, 0.10)  # iris shift per unit of eyeLookX / eyeLookY, in eye widths
_HOLE_DEPTH = 0.1  # eye openings are drawn as if this much deeper (inter-ocular distances) than they are
_BAND_PX = 32  # the final remap runs in bands of about this many rows (pixels)
_EDGE_EPS = 0.5  # map cells: how far outside a triangle's edge (along x or y) a cell centre still counts as inside
_MARGIN_STRETCH = 3.0  # a triangle whose map stretches more than this gets a margin shrunk in proportion


class WarpRenderer:
    """Renders frames of one rig. Not thread-safe: use one renderer per thread."""

    name = "warp"

    def __init__(self, rig: FaceRig, map_scale: int | None = None, draw_eyes: bool = True) -> None:
        """``map_scale``: the warp map is computed on a grid this many times coarser (default: from the
        face size, 1 for small faces up to 4 for large ones). ``draw_eyes=False``: blinks are not drawn (the
        lid layers are not prepared) nor widened, for frames whose own eyes are kept."""
        self.rig = rig
        self.pose = RigPose(rig)
        self.src = rig.image
        self.h, self.w = rig.image.shape[:2]
        v0 = rig.verts[:, :2].astype(np.float64)
        self.v0 = v0
        tris = rig.tris
        # draw order: background ring, eye/mouth holes, then the face on top (face wins at shared edges)
        # the background ring by how much of the head's motion it follows, least first: where a turned
        # head passes over the still background beside it, the hair is drawn over it, not under
        outer = np.where(rig.tri_kind == KIND_OUTER)[0]
        outer = outer[np.argsort(rig.head_weight[tris[outer]].mean(axis=1), kind="stable")]
        mouth = np.where(rig.tri_kind == KIND_MOUTH)[0]
        self._order_under = np.concatenate([outer, mouth])  # drawn first, in this order
        # then the face and the eye openings, far to near. An opening goes in with the face, not under
        # it: a turned face's far side (the temple behind the far eye) lies over that eye in the picture,
        # and drawn over the opening it carried the eye's pixels off with its own parallax (the iris
        # showed twice). Openings are pushed back by _HOLE_DEPTH, so the lids around them still win
        # their shared edges.
        eyes = np.where((rig.tri_kind == KIND_EYE_R) | (rig.tri_kind == KIND_EYE_L))[0]
        face = np.where(rig.tri_kind == KIND_FACE)[0]
        self._order_face = np.concatenate([face, eyes])
        self._depth_bias = np.concatenate([np.zeros(len(face)), np.full(len(eyes), _HOLE_DEPTH * rig.iod)])
        self.tris = tris
        self.kind = rig.tri_kind
        self.eye_r_tris = rig.tri_kind == KIND_EYE_R
        self.eye_l_tris = rig.tri_kind == KIND_EYE_L
        self.mouth_tris = rig.tri_kind == KIND_MOUTH
        self.mouth = MouthPainter(rig)
        self._lip_source: np.ndarray | None = None
        self._lip_source_done = False
        self._lip_ids = np.array(T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER)
        eye_soft = eyes_soft(rig) if draw_eyes else 0.0
        self.eyes = EyePainter(rig, eye_soft) if draw_eyes else None
        self._br = CHANNEL_INDEX["eyeBlinkRight"]
        self._bl = CHANNEL_INDEX["eyeBlinkLeft"]
        self.eyeballs = EyeballPainter(rig, eye_soft) if draw_eyes else None
        self._gx = CHANNEL_INDEX["eyeLookX"]
        self._yaw, self._pitch = CHANNEL_INDEX["headYaw"], CHANNEL_INDEX["headPitch"]
        self._gy = CHANNEL_INDEX["eyeLookY"]
        self.eye_w = float(np.linalg.norm(v0[133] - v0[33]))
        self.src_tri = v0[tris]  # (M, 3, 2)
        self._src_edges = _source_edges(self.src_tri)
        # one map cell per ~1/30 of the inter-ocular distance: fine enough for the piecewise-affine map
        self.map_scale = int(map_scale) if map_scale else int(np.clip(round(rig.iod / 30.0), 1, 4))

    @property
    def lip_source(self) -> np.ndarray | None:
        """The portrait with its lips extended over the opening (``lip_extended_source``), made on first
        use: only closing an open portrait mouth needs it."""
        if not self._lip_source_done:
            self._lip_source = lip_extended_source(self.rig)
            self._lip_source_done = True
        return self._lip_source

    def _lips_from_extended(
        self,
        out: np.ndarray,
        vt: np.ndarray,
        c: float,
        box: tuple[int, int, int, int],
        mx: np.ndarray,
        my: np.ndarray,
        x0: int,
        y0: int,
    ) -> None:
        """Blend in the lips (``box``: x0, y0, x1, y1 in the frame) warped from the lip-extended portrait,
        as far as the mouth is closing (``c``, 0..1)."""
        assert self.lip_source is not None
        lx0, ly0, lx1, ly1 = box
        sub_x = mx[ly0 - y0 : ly1 - y0, lx0 - x0 : lx1 - x0]
        sub_y = my[ly0 - y0 : ly1 - y0, lx0 - x0 : lx1 - x0]
        ext = cv2.remap(self.lip_source, sub_x, sub_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        region = out[ly0:ly1, lx0:lx1]
        region[:] = (region.astype(np.float32) * (1 - c) + ext.astype(np.float32) * c).astype(np.uint8)
        # where closed lips meet there is a soft dark line
        if c > 0.3:
            seam = np.zeros(region.shape[:2], np.uint8)
            mid = 0.5 * (vt[T.LIP_INNER_UPPER] + vt[T.LIP_INNER_LOWER]) - np.array([lx0, ly0])
            cv2.polylines(seam, [np.round(mid * 8).astype(np.int32)], False, (255,), 1, cv2.LINE_AA, shift=3)
            a = (cv2.GaussianBlur(seam.astype(np.float32) / 255.0, (0, 0), 0.6) * 0.45 * (c - 0.3) / 0.7)[..., None]
            dark = self.rig.lip_rgb * 0.35
            region[:] = (region.astype(np.float32) * (1 - a) + dark * a).astype(np.uint8)

    def neutral_values(self) -> np.ndarray:
        """Channel values that reproduce the portrait exactly (its own mouth opening)."""
        v = np.zeros(len(CHANNELS), np.float32)
        v[CHANNEL_INDEX["jawOpen"]] = self.rig.read_gap / MAX_LIP_GAP_IOD
        return v

    def target_points(self, values: np.ndarray) -> np.ndarray:
        """(Nv, 2) target vertex positions in pixels."""
        return self.pose.deform(np.asarray(values, np.float64))[:, :2]

    def render(self, values: np.ndarray) -> np.ndarray:
        """One RGB uint8 frame (H, W, 3) for channel values (len(CHANNELS),)."""
        values = np.asarray(values, np.float64)
        return self.draw(values, self.pose.deform(values))

    def draw(
        self,
        values: np.ndarray,
        v3: np.ndarray,
        clip: tuple[int, int, int, int] | None = None,
        base: np.ndarray | None = None,
    ) -> np.ndarray:
        """The frame of ``values`` (vertices ``v3``, from ``pose.deform``). With ``clip`` (x0, y0, x1, y1)
        and ``base``: only the pixels in ``clip`` are drawn (the mouth is not painted: ``clip`` must not
        reach it), the rest is ``base``'s; within a map cell or two of the clip's edges the upsampled map
        is clamped, so callers keep only the inside (``render.reuse``)."""
        vt = v3[:, :2]
        moved_v = np.abs(vt - self.v0).max(axis=1) > _MOVED_PX
        if not moved_v.any():
            return self.src.copy()
        cx0, cy0, cx1, cy1 = clip if clip is not None else (0, 0, self.w, self.h)
        tris = self.tris
        tri_moved = moved_v[tris].any(axis=1)
        # region to redraw: everything the moved triangles cover before and after
        in_moved = np.zeros(len(vt), bool)
        in_moved[tris[tri_moved]] = True
        pts = np.concatenate([vt[in_moved], self.v0[in_moved]])
        x0 = max(cx0, int(np.floor(pts[:, 0].min())) - 1)
        y0 = max(cy0, int(np.floor(pts[:, 1].min())) - 1)
        x1 = min(cx1, int(np.ceil(pts[:, 0].max())) + 2)
        y1 = min(cy1, int(np.ceil(pts[:, 1].max())) + 2)
        if x1 <= x0 or y1 <= y0:
            return self.src.copy() if base is None else base.copy()

        aff, ok = _affines(vt, tris, self._src_edges)
        # rigid layers for the openings
        gaze = np.array([values[self._gx], values[self._gy]]) * np.array(GAZE_PX) * self.eye_w
        for sel, (a, b) in ((self.eye_r_tris, (33, 133)), (self.eye_l_tris, (362, 263))):
            aff[sel] = similarity(vt[[a, b]], self.v0[[a, b]], shift=-gaze)
        aff[self.mouth_tris] = similarity(vt[[33, 263]], self.v0[[33, 263]])
        # row M is the identity, used for pixels outside every moved triangle
        aff = np.concatenate([aff, np.array([[[1.0, 0, 0], [0, 1.0, 0]]])]).astype(np.float32)
        m_id = len(tris)

        to_draw = tri_moved & ok
        order = self._order_under[to_draw[self._order_under]]
        # painter's order inside the face: far triangles first, so when the head turns the near cheek
        # covers the far one instead of folding over it
        sel = to_draw[self._order_face]
        f = self._order_face[sel]
        if len(f):
            ft = tris[f]
            z = v3[:, 2]
            depth = (z[ft[:, 0]] + z[ft[:, 1]] + z[ft[:, 2]]) / 3 + self._depth_bias[sel]
            order = np.concatenate([order, f[np.argsort(-depth, kind="stable")]])
        if clip is not None:  # only the triangles that reach the clipped region (a map cell or so around it)
            tv = vt[tris[order]]
            lo, hi = tv.min(axis=1), tv.max(axis=1)
            order = order[(hi[:, 0] > x0 - 6) & (lo[:, 0] < x1 + 6) & (hi[:, 1] > y0 - 6) & (lo[:, 1] < y1 + 6)]

        # The backward map is piecewise affine and continuous (except at the openings, which are
        # painted over), so it is computed on a grid ``s`` times coarser and upsampled linearly. A turned
        # head is not: where its near cheek covers what lies behind, the map jumps, and upsampled across
        # the jump the outline becomes a staircase of s-pixel steps. From _FOLD_POSE_DEG on, the map is
        # computed at every pixel (a third more per frame; below it the jumps are too thin to show).
        turned = max(abs(values[self._yaw]), abs(values[self._pitch])) >= _FOLD_POSE_DEG
        s = 1 if turned else self.map_scale
        x0 -= x0 % s
        y0 -= y0 % s
        cw = -(-(x1 - x0) // s)
        ch = -(-(y1 - y0) // s)
        # coarse cell i is centred on full-resolution pixel (i + 0.5) * s - 0.5
        poly = ((vt - np.array([x0, y0]) + 0.5) / s - 0.5)[tris[order]]
        eps = _margins(aff[order])
        rank = _triangle_ranks(poly, cw, ch, eps)
        # rank 0: no moved triangle (identity); rank k: the k-th triangle of ``order``
        aff = np.concatenate([aff[m_id:], aff[order]])
        xs = (x0 + (np.arange(cw, dtype=np.float32) + 0.5) * s - 0.5)[None, :]
        ys = (y0 + (np.arange(ch, dtype=np.float32) + 0.5) * s - 0.5)[:, None]
        mx, my = _backward_map(aff, rank, xs, ys)
        if s > 1:
            mx = cv2.resize(mx, (cw * s, ch * s), interpolation=cv2.INTER_LINEAR)
            my = cv2.resize(my, (cw * s, ch * s), interpolation=cv2.INTER_LINEAR)
        x1 = min(self.w, x0 + cw * s)
        y1 = min(self.h, y0 + ch * s)
        mx = mx[: y1 - y0, : x1 - x0]
        my = my[: y1 - y0, : x1 - x0]
        # closing an open portrait mouth: how far, and the lips' box (within the map) it changes
        # (rounded lips meet beside their opening: the lips there are the closed ones too)
        # (a clip keeps clear of the mouth)
        closing = self.rig.mouth_open_source and clip is None
        closure = max(_lip_closure(values, self.rig), lip_rounding(values)) if closing else 0.0
        if closure > 0 and self.lip_source is None:
            closure = 0.0
        lips = vt[self._lip_ids]
        # reaching past the corners as far as the lip-extended source covers the opening's shadow there
        cx = int(np.ceil(CORNER_REACH * self.rig.iod)) + 2 if closure > 0 else 2
        lx0 = max(x0, int(np.floor(lips[:, 0].min())) - cx)
        ly0 = max(y0, int(np.floor(lips[:, 1].min())) - 2)
        lx1 = min(x1, int(np.ceil(lips[:, 0].max())) + cx + 1)
        ly1 = min(y1, int(np.ceil(lips[:, 1].max())) + 3)
        lip_box = (lx0, ly0, lx1, ly1) if lx1 > lx0 and ly1 > ly0 else None
        if s > 1 and closure > 0 and lip_box is not None:
            # the upper and lower lips meet where the portrait shows teeth between them: the map jumps
            # there, and upsampled across the jump it samples the opening in s-pixel zigzags along the
            # seam. Exact over the lips.
            lpoly = (vt - np.array([lx0, ly0]))[tris[order]]
            lrank = _triangle_ranks(lpoly, lx1 - lx0, ly1 - ly0, eps)
            lxs = np.arange(lx0, lx1, dtype=np.float32)[None, :]
            lys = np.arange(ly0, ly1, dtype=np.float32)[:, None]
            box = (slice(ly0 - y0, ly1 - y0), slice(lx0 - x0, lx1 - x0))
            mx[box], my[box] = _backward_map(aff, lrank, lxs, lys)
        src = self.src
        if base is not None:
            out = base.copy()
        else:
            out = np.empty_like(src)
            out[:y0], out[y1:] = src[:y0], src[y1:]
            out[y0:y1, :x0], out[y0:y1, x1:] = src[y0:y1, :x0], src[y0:y1, x1:]
        _remap_moved(out, src, mx, my, rank, x0, y0, s)
        if closure > 0.01 and lip_box is not None:
            self._lips_from_extended(out, vt, closure, lip_box, mx, my, x0, y0)
        if clip is None:
            self.mouth.paint(out, vt, values)
        if self.eyeballs is not None:
            self.eyeballs.paint(out, vt, lid_raise(values), gaze)
        if self.eyes is not None:
            self.eyes.paint(out, vt, (float(values[self._br]), float(values[self._bl])))
        return out


def _backward_map(aff: np.ndarray, rank: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates (mx, my) of the pixels at columns ``xs`` (1, W) and rows ``ys`` (H, 1): each
    through the affine ``aff[rank]`` of the triangle that covers it (rank 0: the identity)."""
    coef = [np.take(aff[:, r, c], rank) for r in range(2) for c in range(3)]
    mx = coef[0] * xs
    mx += coef[1] * ys
    mx += coef[2]
    my = coef[3] * xs
    my += coef[4] * ys
    my += coef[5]
    return mx, my


def _remap_moved(
    out: np.ndarray, src: np.ndarray, mx: np.ndarray, my: np.ndarray, rank: np.ndarray, x0: int, y0: int, s: int
) -> None:
    """``out[y0:, x0:]`` (the extent of ``mx``, ``my``) = ``src`` remapped through the map; pixels
    that would remap to themselves are copied instead.

    ``rank`` (ch, cw) is the coarse triangle raster the map was upsampled from (``s`` pixels per
    cell); a pixel whose neighbouring cells are all rank 0 (identity) has an identity map, except in
    the outer ``s // 2`` pixels of the map, where the upsampling clamps at the border. The remap
    runs in bands of rows, each over the columns some moved cell reaches, then on the four border
    strips.
    """
    h, w = mx.shape
    ch, cw = rank.shape
    e = s // 2
    band = max(1, _BAND_PX // s)  # map rows per band
    nb = -(-ch // band)
    moved = np.zeros((nb * band + 1, cw), bool)  # one spare row below
    moved[:ch] = rank != 0
    near = moved[:-1].reshape(nb, band, cw).any(axis=1)
    near[1:] |= moved[band - 1 : -1 : band][: nb - 1]  # the row above each band (the band's own for the first)
    near |= moved[band::band]  # and the row below
    any_col = near.any(axis=1)
    first = np.argmax(near, axis=1)
    last = cw - 1 - np.argmax(near[:, ::-1], axis=1)
    boxes = []  # (top, bottom, left, right) in map pixels
    for j in range(nb):
        top, bottom = j * band * s, min((j + 1) * band * s, h)
        left, right = (int(first[j]) - 1) * s, (int(last[j]) + 2) * s
        left, right = (max(left, 0), min(right, w)) if any_col[j] else (w, w)
        src_rows, out_rows = src[y0 + top : y0 + bottom], out[y0 + top : y0 + bottom]
        out_rows[:, x0 : x0 + left] = src_rows[:, x0 : x0 + left]
        out_rows[:, x0 + right : x0 + w] = src_rows[:, x0 + right : x0 + w]
        boxes.append((top, bottom, left, right))
    boxes += [(0, e, 0, w), (ch * s - e, h, 0, w), (0, h, 0, e), (0, h, cw * s - e, w)]
    for top, bottom, left, right in boxes:
        top, bottom, left, right = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
        if bottom > top and right > left:
            bx, by = mx[top:bottom, left:right], my[top:bottom, left:right]
            dst = out[y0 + top : y0 + bottom, x0 + left : x0 + right]
            cv2.remap(src, bx, by, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)


_FOLD_POSE_DEG = 10.0
"""Head turns (yaw or pitch, degrees) from which the backward map is computed at every pixel."""


def _lip_closure(values: np.ndarray, rig: FaceRig) -> float:
    """How far the mouth is closed relative to the portrait's own opening: 0 as in the portrait, 1 shut."""
    return clamp(1.0 - rig_lip_gap(rig, values) / max(rig.source_gap, 1e-6), 0.0, 1.0)


def _triangle_ranks(poly: np.ndarray, cw: int, ch: int, eps: np.ndarray | None = None) -> np.ndarray:
    """Which triangle covers each cell of a (ch, cw) grid: 0 for none, k + 1 for ``poly[k]``.

    ``poly`` (K, 3, 2) holds the triangles in grid units (cell (row j, column i) is centred on
    x = i, y = j), in draw order: where triangles overlap, the later one wins. A cell belongs to a
    triangle when its centre lies inside it or within ``_EDGE_EPS`` of an edge, measured along x for
    a steep edge and along y for a flat one (about what an 8-connected line through the edge covers,
    as ``cv2.fillConvexPoly`` draws), and within the triangle's bounding box grown by ``_EDGE_EPS``;
    so a cell centre on a shared edge always gets one of the two triangles. ``eps`` (K,) replaces
    ``_EDGE_EPS`` per triangle (``_margins``). All triangles at once:
    every (triangle, row) pair gives an x-span (the three edge half-planes cut at the row), the spans
    expand to cells, and ``np.maximum.at`` keeps the highest rank per cell.
    """
    out = np.zeros(ch * cw, np.int32)
    k = len(poly)
    if k == 0:
        return out.reshape(ch, cw)
    poly = np.asarray(poly, np.float64)
    e = np.full((k, 1), _EDGE_EPS) if eps is None else np.asarray(eps, np.float64).reshape(k, 1)
    px, py = poly[..., 0], poly[..., 1]  # (K, 3)
    dx = px[:, [1, 2, 0]] - px  # edge e runs from vertex e to vertex e + 1
    dy = py[:, [1, 2, 0]] - py
    sg = np.sign(dx[:, :1] * dy[:, 1:2] - dy[:, :1] * dx[:, 1:2])  # orientation, so that inside is >= 0
    # inside edge e: sg * cross(d, p - v_e) + eps * max|d| >= 0, i.e. ax * x + c1 * y + c0 >= 0
    ax = -sg * dy
    c1 = sg * dx
    c0 = sg * (dy * px - dx * py) + e * np.maximum(np.abs(dx), np.abs(dy))
    # on row y the edge bounds x at -(c0 + c1 * y) / ax: from below where ax > 0, from above where
    # ax < 0; horizontal edges (ax == 0) bound the rows only, which the row range below does
    lo_e, hi_e = ax > 0, ax < 0
    inv = np.divide(-1.0, ax, out=np.zeros_like(ax), where=lo_e | hi_e)
    pack = np.empty((14, k))  # per triangle: x bounds from below (3 edges), from above (3), the x range
    pack[0:3] = np.where(lo_e, c0 * inv, -np.inf).T
    pack[3:6] = np.where(lo_e, c1 * inv, 0.0).T
    pack[6:9] = np.where(hi_e, c0 * inv, np.inf).T
    pack[9:12] = np.where(hi_e, c1 * inv, 0.0).T
    pack[12] = np.minimum(np.minimum(px[:, 0], px[:, 1]), px[:, 2]) - e[:, 0]
    pack[13] = np.maximum(np.maximum(px[:, 0], px[:, 1]), px[:, 2]) + e[:, 0]
    ymin = np.minimum(np.minimum(py[:, 0], py[:, 1]), py[:, 2]) - e[:, 0]
    ymax = np.maximum(np.maximum(py[:, 0], py[:, 1]), py[:, 2]) + e[:, 0]
    ylo = np.ceil(np.clip(ymin, 0, ch)).astype(np.int64)
    yhi = np.floor(np.clip(ymax, -1, ch - 1)).astype(np.int64)
    nr = np.maximum(yhi - ylo + 1, 0)
    n_rows = int(nr.sum())
    if n_rows == 0:
        return out.reshape(ch, cw)
    tri = np.repeat(np.arange(k), nr)
    y = np.repeat(ylo - (np.cumsum(nr) - nr), nr) + np.arange(n_rows)
    f = np.repeat(pack, nr, axis=1)  # (14, rows)
    yf = y.astype(np.float64)
    lower = np.maximum(np.maximum(f[0] + f[3] * yf, f[1] + f[4] * yf), np.maximum(f[2] + f[5] * yf, f[12]))
    upper = np.minimum(np.minimum(f[6] + f[9] * yf, f[7] + f[10] * yf), np.minimum(f[8] + f[11] * yf, f[13]))
    xl = np.ceil(np.clip(lower, 0, cw)).astype(np.int32)
    xr = np.floor(np.clip(upper, -1, cw - 1)).astype(np.int32)
    n = np.maximum(xr - xl + 1, 0)
    n_cells = int(n.sum())
    cell = np.repeat(y.astype(np.int32) * cw + xl - (np.cumsum(n, dtype=np.int32) - n), n)
    cell += np.arange(n_cells, dtype=np.int32)
    np.maximum.at(out, cell, np.repeat((tri + 1).astype(np.int32), n))
    return out.reshape(ch, cw)


def _margins(aff: np.ndarray) -> np.ndarray:
    """Per triangle, how far outside its edges (map cells) its affine still applies: ``_EDGE_EPS``,
    shrunk where the map stretches (its largest singular value) past ``_MARGIN_STRETCH``.

    The margin closes cracks between neighbours; outside a triangle its affine extrapolates. A sliver
    (a cheek on a turned face's outline, squeezed as the jaw opens) maps its margin many pixels away
    from its source: the background's colour appeared as a dot on the cheek. Its neighbours' margins
    cover the shared edges instead."""
    a, b, c, d = aff[:, 0, 0], aff[:, 0, 1], aff[:, 1, 0], aff[:, 1, 1]
    sq = a * a + b * b + c * c + d * d
    det = a * d - b * c
    sigma = np.sqrt(0.5 * (sq + np.sqrt(np.maximum(sq * sq - 4.0 * det * det, 0.0))))
    return _EDGE_EPS * np.minimum(1.0, _MARGIN_STRETCH / np.maximum(sigma, 1e-9))


def _affines(
    vt: np.ndarray, tris: np.ndarray, src_edges: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps (M, 2, 3) taking each target triangle ``vt[tris]`` (vertices (Nv, 2), tris (M, 3))
    onto its source triangle, given as ``src_edges`` (``_source_edges``).

    Closed form, all triangles at once. Degenerate target triangles get the identity and ok=False.
    """
    s0, f1, f2 = src_edges
    p0 = vt[tris[:, 0]]
    e1 = vt[tris[:, 1]] - p0
    e2 = vt[tris[:, 2]] - p0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-6
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # L = F @ inv(E), E = [e1 e2] as columns
    i00 = e2[:, 1] * inv_det
    i01 = -e2[:, 0] * inv_det
    i10 = -e1[:, 1] * inv_det
    i11 = e1[:, 0] * inv_det
    aff = np.empty((len(tris), 2, 3))
    aff[:, 0, 0] = f1[:, 0] * i00 + f2[:, 0] * i10
    aff[:, 0, 1] = f1[:, 0] * i01 + f2[:, 0] * i11
    aff[:, 1, 0] = f1[:, 1] * i00 + f2[:, 1] * i10
    aff[:, 1, 1] = f1[:, 1] * i01 + f2[:, 1] * i11
    aff[:, :, 2] = s0 - np.einsum("mij,mj->mi", aff[:, :, :2], p0)
    aff[~ok] = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    return aff, ok


def _source_edges(src: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For source triangles (M, 3, 2): first vertices and the two edges leaving them, each (M, 2)."""
    return (
        np.ascontiguousarray(src[:, 0]),
        np.ascontiguousarray(src[:, 1] - src[:, 0]),
        np.ascontiguousarray(src[:, 2] - src[:, 0]),
    )


__all__ = ["WarpRenderer"]
