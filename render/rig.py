"""FaceRig: everything the warp renderer needs about one portrait, built once.

Coordinates: image pixels (x right, y down) with depth z pointing away from the camera. The rig also
keeps a *face frame* (origin between the eyes, x towards the subject's left eye, y towards the chin,
z into the head) in units of the inter-ocular distance (IOD), in which expressions are defined, so a
tilted or small face moves the same way as a frontal large one.

Mesh: mediapipe's 852-triangle face tessellation, plus "hole" triangles that fill the eye and mouth
openings (rendered as rigid layers, never stretched), plus rings of points around the face (hair,
ears, neck) and the image border, triangulated so the head can move without tearing.

Expressions are driven through *handles* (lips, jaw line, lids, brows) whose displacement is spread
to every other vertex by harmonic weights computed once on the mesh graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from render import topology as T
from render.landmarks import IBUG_68, MEDIAPIPE_478, FaceLandmarks
from render.segment import person_mask

KIND_FACE, KIND_OUTER, KIND_EYE_R, KIND_EYE_L, KIND_MOUTH = 0, 1, 2, 3, 4

# Lip gap (inner upper to inner lower lip, at the centre) for jawOpen = 1, in IOD units.
MAX_LIP_GAP_IOD = 0.5
# Source lip gap above which the portrait is treated as showing its mouth interior (teeth).
OPEN_SOURCE_GAP_IOD = 0.03
LID_REACH = 0.12
"""How far above an upper lid its closing moves the skin (inter-ocular distances): the lid unfolds
below the crease, which stays where it is."""
_SNAP_REACH = 0.06  # an open mouth's inner-lip points move at most this far onto the lips' edge (iod)
# Jaw hinge (temporomandibular joint) in the face frame: below the eyes, behind the face surface.
JAW_HINGE_YZ = (0.5, 1.1)
# Head rotation pivot (top of the neck) in the face frame.
HEAD_PIVOT = (0.0, 1.2, 0.8)


@dataclass
class FaceRig:
    """A portrait prepared for animation. Arrays are float32 unless noted."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    verts: np.ndarray  # (Nv, 3) source vertex positions, pixels (x, y, depth)
    tris: np.ndarray  # (M, 3) int32
    tri_kind: np.ndarray  # (M,) int8, KIND_*
    origin: np.ndarray  # (3,) face-frame origin, pixels
    axes: np.ndarray  # (3, 3) rows: face-frame x, y, z unit vectors in pixel space
    iod: float  # inter-ocular distance, pixels
    local: np.ndarray  # (Nv, 3) vertices in the face frame, IOD units
    head_weight: np.ndarray  # (Nv,) how much of the head rotation each vertex follows
    handles: np.ndarray  # (Nh,) int32 vertex indices of handles
    harmonic: np.ndarray  # (Nv, Nh) displacement of every vertex per unit handle displacement
    n_landmarks: int
    source_gap: float  # lip gap of the portrait, IOD units
    mouth_open_source: bool
    lip_rgb: np.ndarray  # (3,) mean lip colour
    skin_rgb: np.ndarray  # (3,) mean cheek colour
    roi: tuple[int, int, int, int]  # (x0, y0, x1, y1) pixels that animation can change

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])

    def to_pixels(self, local_delta: np.ndarray) -> np.ndarray:
        """Convert face-frame displacements (N, 3) in IOD units to pixel displacements (N, 3)."""
        return (local_delta * self.iod) @ self.axes

    def handle_pos(self, idx: list[int]) -> np.ndarray:
        return self.local[idx]


class RigError(ValueError):
    """A rig cannot be built from these landmarks."""


_OUTLINE_MARGIN_IOD = 0.08
"""The ring that follows the head lies this far outside the person's outline (inter-ocular distances):
all of the hair moves rigidly, with a sliver of background."""
_STILL_IOD = 0.25
"""Background this far outside that ring does not move at all; in between it follows less and less."""


def _outline_scale(person: np.ndarray, centre: np.ndarray, p: np.ndarray, iod: float) -> float | None:
    """Along the ray from ``centre`` through the face-outline point ``p``: the scale (1 = ``p``) of a point
    just outside where the person ends, or None when it does not end before 2.4 (neck and body below)."""
    h, w = person.shape
    d = p - centre
    beyond = _OUTLINE_MARGIN_IOD * iod / max(float(np.linalg.norm(d)), 1e-6)
    for s in np.arange(1.0, 2.42, 0.02):
        x, y = centre + s * d
        if not (0 <= x < w and 0 <= y < h):
            return None
        if person[int(y), int(x)] < 0.5:
            return float(s) + beyond
    return None


def build_rig(image: np.ndarray, face: FaceLandmarks, segment: bool = True) -> FaceRig:
    """Build the rig of one face in an RGB uint8 image (landmarks from mediapipe's face mesh).
    ``segment``: keep the background still where mediapipe's person segmentation finds it."""
    if face.scheme == IBUG_68:
        from render.canonical import fit_ibug68

        face = fit_ibug68(face.points, face.image_size)
    if face.scheme != MEDIAPIPE_478 or face.points.shape[0] < 478:
        raise RigError(f"the warp rig needs mediapipe's 478-point mesh, got {face.scheme} ({len(face.points)} points)")
    h, w = image.shape[:2]
    lm = face.points.astype(np.float64)

    # --- face frame -------------------------------------------------------------------------
    eye_r, eye_l = eye_centres(lm)
    iod = float(np.linalg.norm((eye_l - eye_r)[:2]))
    if iod < 8:
        raise RigError(f"the face is too small to animate (eyes {iod:.1f} px apart; need at least 8)")
    lm = snap_inner_lips(image, lm, iod)
    origin = (eye_r + eye_l) / 2
    ex = eye_l - eye_r
    ex /= np.linalg.norm(ex)
    down = lm[T.CHIN] - origin
    ey = down - ex * (down @ ex)
    ey /= np.linalg.norm(ey)
    ez = np.cross(ex, ey)
    axes = np.stack([ex, ey, ez])

    # --- outer rings and border -------------------------------------------------------------
    oval = lm[T.FACE_OVAL]
    centre = oval[:, :2].mean(axis=0)
    ring_pts: list[np.ndarray] = []
    ring_w: list[float] = []
    ring_jaw: list[float] = []
    oval_depth = float(oval[:, 2].mean())
    chin_local_y = float(((lm[T.CHIN] - origin) @ axes[1]) / iod)
    # where the person ends (hair included) along each ray from the face's centre through its outline
    person = person_mask(image) if segment else None
    outline_scale = [_outline_scale(person, centre, p[:2], iod) if person is not None else None for p in oval]

    def head_share(q: np.ndarray, z: float, w_above: float, w_below: float) -> tuple[float, float]:
        ly = float(((np.array([q[0], q[1], z]) - origin) @ axes[1]) / iod)
        t = float(np.clip((ly - 0.6) / max(chin_local_y - 0.6, 1e-3), 0.0, 1.0))  # 0 at cheeks, 1 below chin
        return float(w_above * (1 - t) + w_below * t), t

    for scale, w_above, w_below in ((1.3, 1.0, 0.55), (1.75, 0.7, 0.2), (2.4, 0.3, 0.0)):
        for p, s_out in zip(oval, outline_scale):
            q = centre + scale * (p[:2] - centre)
            wt, t = head_share(q, float(p[2]), w_above, w_below)
            if s_out is not None and scale > s_out:
                # background beyond the person's outline follows less and less, and from
                # _STILL_IOD outside it not at all
                beyond = (scale - s_out) * float(np.linalg.norm(p[:2] - centre)) / iod
                wt *= float(np.clip(1.0 - beyond / _STILL_IOD, 0.0, 1.0))
            # same depth as the face outline it extends, so the silhouette and the hair move together
            ring_pts.append(np.array([q[0], q[1], p[2]]))
            ring_w.append(wt)
            ring_jaw.append(float(0.35 * t) if scale < 1.5 else 0.0)
    # a ring just outside the person's outline follows the head like the hair inside it, so the
    # stretch that keeps the mesh whole falls on the band of background beside the outline
    for p, s_out in zip(oval, outline_scale):
        if s_out is None:
            continue
        q = centre + s_out * (p[:2] - centre)
        wt, _ = head_share(q, float(p[2]), 1.0, 0.55)
        ring_pts.append(np.array([q[0], q[1], p[2]]))
        ring_w.append(wt)
        ring_jaw.append(0.0)
    border: list[np.ndarray] = []
    n_side = 8
    for i in range(n_side + 1):
        f = i / n_side
        for x, y in ((f * (w - 1), 0.0), (f * (w - 1), h - 1.0), (0.0, f * (h - 1)), (w - 1.0, f * (h - 1))):
            border.append(np.array([x, y, oval_depth]))
    # keep ring points inside the image and apart from each other and from the border
    min_gap = max(3.0, 0.06 * iod)
    kept_ring: list[int] = []
    all_xy = [b[:2] for b in border]
    for i, p in enumerate(ring_pts):
        if not (2 <= p[0] <= w - 3 and 2 <= p[1] <= h - 3):
            continue
        if all_xy and np.min(np.linalg.norm(np.array(all_xy) - p[:2], axis=1)) < min_gap:
            continue
        if np.min(np.linalg.norm(oval[:, :2] - p[:2], axis=1)) < min_gap:
            continue
        kept_ring.append(i)
        all_xy.append(p[:2])
    border_arr = np.unique(np.round(np.array(border), 3), axis=0)

    n_lm = lm.shape[0]
    verts = np.concatenate([lm, np.array([ring_pts[i] for i in kept_ring]).reshape(-1, 3), border_arr], axis=0)
    n_ring = len(kept_ring)
    ring_idx = np.arange(n_lm, n_lm + n_ring)
    border_idx = np.arange(n_lm + n_ring, len(verts))

    head_weight = np.zeros(len(verts))
    head_weight[:n_lm] = 1.0
    head_weight[ring_idx] = [ring_w[i] for i in kept_ring]

    # --- triangles ----------------------------------------------------------------------------
    face_tris = T.mesh_triangles()
    outer_ids = np.concatenate([np.array(T.FACE_OVAL), ring_idx, border_idx])
    dl = Delaunay(verts[outer_ids, :2])
    oval_poly = oval[:, :2].astype(np.float32).reshape(-1, 1, 2)
    outer_tris = []
    for simplex in dl.simplices:
        tri = outer_ids[simplex]
        c = verts[tri, :2].mean(axis=0)
        if cv2.pointPolygonTest(oval_poly, (float(c[0]), float(c[1])), False) < 0:
            outer_tris.append(tri)
    hole_tris: list[tuple[list[int], int]] = []
    for upper, lower, kind in (
        (T.R_EYE_UPPER, T.R_EYE_LOWER, KIND_EYE_R),
        (T.L_EYE_UPPER, T.L_EYE_LOWER, KIND_EYE_L),
        (T.LIP_INNER_UPPER, T.LIP_INNER_LOWER, KIND_MOUTH),
    ):
        for k in range(len(upper) - 1):
            for tri in ((upper[k], upper[k + 1], lower[k + 1]), (upper[k], lower[k + 1], lower[k])):
                if len(set(tri)) == 3:
                    hole_tris.append((list(tri), kind))
    tris = np.concatenate(
        [
            face_tris,
            np.array(outer_tris, dtype=np.int32).reshape(-1, 3),
            np.array([t for t, _ in hole_tris], dtype=np.int32).reshape(-1, 3),
        ]
    ).astype(np.int32)
    tri_kind = np.concatenate(
        [
            np.full(len(face_tris), KIND_FACE),
            np.full(len(outer_tris), KIND_OUTER),
            np.array([k for _, k in hole_tris]),
        ]
    ).astype(np.int8)

    local = ((verts - origin) @ axes.T) / iod

    # --- handles and harmonic weights ------------------------------------------------------------
    handle_list = _handle_vertices(local, n_lm, ring_idx, border_idx)
    harmonic = _harmonic_weights(local, tris, tri_kind, handle_list)
    _confine_lids(harmonic, local, handle_list)

    # --- mouth state and colours ------------------------------------------------------------------
    gap_pairs = [(82, 87), (13, 14), (312, 317), (81, 178), (311, 402)]
    gaps = [float((local[b] - local[a]) @ np.array([0, 1, 0])) for a, b in gap_pairs]
    source_gap = max(0.0, float(np.mean(gaps)))
    lip_rgb = _mean_colour(
        image,
        lm,
        T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER[::-1][1:-1],
        hole=T.LIP_INNER_UPPER + T.LIP_INNER_LOWER[::-1][1:-1],
    )
    skin_rgb = _mean_colour(image, lm, [50, 101, 36, 205, 187, 123, 117, 118])

    xs, ys = verts[head_weight > 0, 0], verts[head_weight > 0, 1]
    pad = int(0.15 * iod) + 2
    roi = (
        int(max(0, np.floor(xs.min()) - pad)),
        int(max(0, np.floor(ys.min()) - pad)),
        int(min(w, np.ceil(xs.max()) + pad + 1)),
        int(min(h, np.ceil(ys.max()) + pad + 1)),
    )
    return FaceRig(
        image=np.ascontiguousarray(image),
        verts=verts.astype(np.float32),
        tris=tris,
        tri_kind=tri_kind,
        origin=origin.astype(np.float32),
        axes=axes.astype(np.float32),
        iod=iod,
        local=local.astype(np.float32),
        head_weight=head_weight.astype(np.float32),
        handles=np.array(handle_list, dtype=np.int32),
        harmonic=harmonic.astype(np.float32),
        n_landmarks=n_lm,
        source_gap=source_gap,
        mouth_open_source=source_gap > OPEN_SOURCE_GAP_IOD,
        lip_rgb=lip_rgb.astype(np.float32),
        skin_rgb=skin_rgb.astype(np.float32),
        roi=roi,
    )


# Handle groups (mediapipe indices). Moving handles get explicit displacements each frame; fixed
# handles hold still (besides head pose); every other vertex follows harmonically.
JAW_LINE = [58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 132, 361]
LOWER_FACE = [18, 200, 199, 175, 83, 313, 201, 421, 32, 262, 208, 428, 171, 396, 140, 369, 170, 395, 169, 394]
UPPER_LIPS = sorted(set(T.LIP_OUTER_UPPER + T.LIP_INNER_UPPER) - set(T.MOUTH_CORNERS))
LOWER_LIPS = sorted(set(T.LIP_OUTER_LOWER + T.LIP_INNER_LOWER) - set(T.MOUTH_CORNERS))
UPPER_LIDS = T.R_EYE_UPPER[1:-1] + T.L_EYE_UPPER[1:-1]
LOWER_LIDS = T.R_EYE_LOWER[1:-1] + T.L_EYE_LOWER[1:-1]
BROWS = T.R_BROW + T.L_BROW
FIXED = sorted(
    set(T.NOSE_RIGID + T.FOREHEAD + [33, 133, 263, 362, 234, 454, 93, 323, 127, 356, 162, 389, 21, 251])
    | {i for i in T.FACE_OVAL if i not in JAW_LINE}
    | set(range(468, 478))
)


def moving_handles() -> list[int]:
    return sorted(
        set(JAW_LINE + LOWER_FACE + UPPER_LIPS + LOWER_LIPS + T.MOUTH_CORNERS + UPPER_LIDS + LOWER_LIDS + BROWS)
    )


def _handle_vertices(local: np.ndarray, n_lm: int, ring_idx: np.ndarray, border_idx: np.ndarray) -> list[int]:
    fixed = [i for i in FIXED if i not in moving_handles()]
    return moving_handles() + fixed + list(ring_idx) + list(border_idx)


def _confine_lids(harmonic: np.ndarray, local: np.ndarray, handles: list[int]) -> None:
    """Limit what a closing upper lid drags along to the skin just above it (``harmonic`` in place).

    Interpolated harmonically between the lid and the brows, a shutting lid would pull the crease and
    the skin under the brow halfway down with it, and the crease would then outline the shut lid like
    a second, lower eye. Each upper-lid handle's weight on a vertex above the lid fades out over
    ``LID_REACH`` above the lid's edge.
    """
    pos = {int(v): i for i, v in enumerate(handles)}
    x = local[:, 0].astype(np.float64)
    y = local[:, 1].astype(np.float64)
    for upper in (T.R_EYE_UPPER, T.L_EYE_UPPER):
        lid = local[upper, :2].astype(np.float64)
        order = np.argsort(lid[:, 0])
        xs, ys = lid[order, 0], lid[order, 1]
        # height above the lid's edge; beyond the corners, the distance to the nearer corner
        above = np.interp(x, xs, ys) - y
        outside = (x < xs[0]) | (x > xs[-1])
        corner = np.where(x < xs[0], 0, -1)
        dist = np.hypot(x - xs[corner], y - ys[corner])
        h = np.where(outside, dist, above)
        t = np.clip(h / LID_REACH, 0.0, 1.0)
        keep = np.where(h > 0, 1.0 - t * t * (3 - 2 * t), 1.0)
        keep[upper] = 1.0
        harmonic[:, [pos[i] for i in upper[1:-1]]] *= keep[:, None]


def _harmonic_weights(local: np.ndarray, tris: np.ndarray, kind: np.ndarray, handles: list[int]) -> np.ndarray:
    """Weights W (Nv, Nh): displacement of each vertex = W @ handle displacements (harmonic interpolation).

    Hole triangles are left out so that the upper and lower lips (and lids) are not coupled across
    the opening.
    """
    nv = local.shape[0]
    keep = (kind == KIND_FACE) | (kind == KIND_OUTER)
    t = tris[keep]
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [0, 2]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    length = np.linalg.norm(local[e[:, 0], :2] - local[e[:, 1], :2], axis=1)
    wts = 1.0 / np.maximum(length, 1e-3)
    lap = np.zeros((nv, nv))
    lap[e[:, 0], e[:, 1]] -= wts
    lap[e[:, 1], e[:, 0]] -= wts
    lap[np.arange(nv), np.arange(nv)] = -lap.sum(axis=1)
    h = np.array(handles)
    is_h = np.zeros(nv, bool)
    is_h[h] = True
    free = np.where(~is_h)[0]
    W = np.zeros((nv, len(h)))
    W[h, np.arange(len(h))] = 1.0
    if len(free):
        lff = lap[np.ix_(free, free)] + 1e-9 * np.eye(len(free))
        lfh = lap[np.ix_(free, h)]
        W[free] = -np.linalg.solve(lff, lfh)
    return W


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
            col = cv2.remap(
                red,
                np.full((1, len(ys)), x, np.float32),
                ys[None, :].astype(np.float32),
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )[0]
            is_lip = col >= thr
            if not is_lip[0]:
                continue  # no lip where the lip should be: leave the point
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


def _mean_colour(image: np.ndarray, lm: np.ndarray, idx: list[int], hole: list[int] | None = None) -> np.ndarray:
    mask = np.zeros(image.shape[:2], np.uint8)
    pts = np.round(lm[idx, :2]).astype(np.int32)
    cv2.fillPoly(mask, [cv2.convexHull(pts) if hole is None else pts], (255,))
    if hole:
        cv2.fillPoly(mask, [np.round(lm[hole, :2]).astype(np.int32)], (0,))
    if mask.sum() == 0:
        return np.array([150.0, 90.0, 90.0])
    return image[mask > 0].reshape(-1, 3).mean(axis=0)
