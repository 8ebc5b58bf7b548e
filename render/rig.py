"""FaceRig: everything the warp renderer needs about one portrait, built once.

Coordinates: image pixels (x right, y down) with depth z pointing away from the camera. The rig also
keeps a *face frame* (origin between the eyes, x towards the subject's left eye, y towards the chin,
z into the head) in units of the inter-ocular distance (IOD), in which expressions are defined, so a
tilted or small face moves the same way as a frontal large one.

Mesh: mediapipe's 852-triangle face tessellation, plus "hole" triangles that fill the eye and mouth
openings (rendered as rigid layers, never stretched), plus rings of points around the face (hair,
ears, neck) and the image border, triangulated so the head can move without tearing.

Expressions are driven through *handles* (lips, jaw line, lids, brows) whose displacement is spread
to every other vertex by harmonic weights computed once on the mesh graph (``render.rig_weights``); the
lips' colour is read by ``render.lips``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from render import topology as T
from render.landmarks import IBUG_68, MEDIAPIPE_478, FaceLandmarks
from render.lips import (
    LIP_CONTRAST,
    OPEN_SOURCE_GAP_IOD,
    LipColours,
    eye_centres,
    lip_colours,
    lip_regions,
    mean_colour,
    redness,
    snap_inner_lips,
)
from render.rig_weights import (
    BROWS,
    FIXED,
    JAW_LINE,
    KIND_EYE_L,
    KIND_EYE_R,
    KIND_FACE,
    KIND_MOUTH,
    KIND_OUTER,
    LID_REACH,
    LOWER_FACE,
    LOWER_LIDS,
    LOWER_LIPS,
    UPPER_LIDS,
    UPPER_LIPS,
    confine_lids,
    handle_vertices,
    harmonic_weights,
    moving_handles,
)
from render.segment import person_mask

__all__ = [
    "BROWS", "FIXED", "HEAD_PIVOT", "JAW_HINGE_YZ", "JAW_LINE", "KIND_EYE_L", "KIND_EYE_R", "KIND_FACE",
    "KIND_MOUTH", "KIND_OUTER", "LID_REACH", "LIP_CONTRAST", "LOWER_FACE", "LOWER_LIDS", "LOWER_LIPS",
    "MAX_LIP_GAP_IOD", "OPEN_SOURCE_GAP_IOD", "UPPER_LIDS", "UPPER_LIPS", "FaceRig", "LipColours", "RigError",
    "build_rig", "eye_centres", "lip_colours", "lip_regions", "moving_handles", "redness", "snap_inner_lips",
]  # fmt: skip
_mean_colour = mean_colour  # the name render.redub imports


# Lip gap (inner upper to inner lower lip, at the centre) for jawOpen = 1, in IOD units.
MAX_LIP_GAP_IOD = 0.5
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
    source_gap: float  # lip gap of the portrait, IOD units (its inner lips snapped onto the lips' edge)
    mouth_open_source: bool
    lip_rgb: np.ndarray  # (3,) mean lip colour
    skin_rgb: np.ndarray  # (3,) mean cheek colour
    roi: tuple[int, int, int, int]  # (x0, y0, x1, y1) pixels that animation can change
    seen_gap: float | None = None  # lip gap of the portrait as the landmark reader reads it; None: source_gap
    # (4, 11, 3) the same face's lips closed (outer upper, inner upper, outer lower, inner lower contours),
    # face frame, IOD: a filmed shot's own closed mouth, which closing a frame's open mouth returns to
    rest_lips: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])

    def to_pixels(self, local_delta: np.ndarray) -> np.ndarray:
        """Convert face-frame displacements (N, 3) in IOD units to pixel displacements (N, 3)."""
        return (local_delta * self.iod) @ self.axes

    def handle_pos(self, idx: list[int]) -> np.ndarray:
        return self.local[idx]

    @property
    def read_gap(self) -> float:
        """The portrait's own lip gap as the landmark reader reads it, IOD (``seen_gap``, else ``source_gap``)."""
        return self.source_gap if self.seen_gap is None else self.seen_gap

    def lip_gap(self, gap: float) -> float:
        """The gap between this rig's inner lips (IOD) that shows a lip gap of ``gap`` IOD as the landmark
        reader reads it (the motion encoder's scale: ``jawOpen`` 1 is ``MAX_LIP_GAP_IOD``).

        The reader's inner-lip points of a mouth showing teeth lie a few pixels out on the lips, on the
        portrait and on its renders alike, while the rig's lie on the lips' colour edge
        (``snap_inner_lips``): the portrait's own opening reads ``seen_gap`` where the rig has
        ``source_gap``. Below the portrait's own opening the two scale together (both reach 0 closed);
        beyond it the lips part by the extra gap asked."""
        seen = self.read_gap
        if seen <= 1e-3:
            return gap
        if gap <= seen:
            return gap * self.source_gap / seen
        return gap - seen + self.source_gap


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


def _outer_rings(
    image: np.ndarray, lm: np.ndarray, origin: np.ndarray, axes: np.ndarray, iod: float, segment: bool
) -> tuple[list[np.ndarray], list[float]]:
    """Rings of points around the face (hair, ears, neck) and how much each follows the head: less
    below the cheeks, and less and less in the background beyond the person's outline."""
    oval = lm[T.FACE_OVAL]
    centre = oval[:, :2].mean(axis=0)
    ring_pts: list[np.ndarray] = []
    ring_w: list[float] = []
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
    # a ring just outside the person's outline follows the head like the hair inside it, so the
    # stretch that keeps the mesh whole falls on the band of background beside the outline
    for p, s_out in zip(oval, outline_scale):
        if s_out is None:
            continue
        q = centre + s_out * (p[:2] - centre)
        wt, _ = head_share(q, float(p[2]), 1.0, 0.55)
        ring_pts.append(np.array([q[0], q[1], p[2]]))
        ring_w.append(wt)
    return ring_pts, ring_w


def _mesh_points(
    lm: np.ndarray, ring_pts: list[np.ndarray], ring_w: list[float], size: tuple[int, int], iod: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mesh's vertices (landmarks, the ring points kept, the image border), the ring's and the
    border's indices, and how much each vertex follows the head."""
    w, h = size
    oval = lm[T.FACE_OVAL]
    oval_depth = float(oval[:, 2].mean())
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
    return verts, ring_idx, border_idx, head_weight


def _triangles(
    verts: np.ndarray, oval: np.ndarray, ring_idx: np.ndarray, border_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The mesh's triangles and their kinds: mediapipe's face, the Delaunay triangles outside the face
    oval, and the eye and mouth holes."""
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
    return tris, tri_kind


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
    detected = lm
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
    ring_pts, ring_w = _outer_rings(image, lm, origin, axes, iod, segment)
    verts, ring_idx, border_idx, head_weight = _mesh_points(lm, ring_pts, ring_w, (w, h), iod)
    n_lm = lm.shape[0]
    tris, tri_kind = _triangles(verts, oval, ring_idx, border_idx)

    local = ((verts - origin) @ axes.T) / iod

    # --- handles and harmonic weights ------------------------------------------------------------
    handle_list = handle_vertices(local, n_lm, ring_idx, border_idx)
    harmonic = harmonic_weights(local, tris, tri_kind, handle_list)
    confine_lids(harmonic, local, handle_list)

    # --- mouth state and colours ------------------------------------------------------------------
    gap_pairs = [(82, 87), (13, 14), (312, 317), (81, 178), (311, 402)]
    gaps = [float((local[b] - local[a]) @ np.array([0, 1, 0])) for a, b in gap_pairs]
    source_gap = max(0.0, float(np.mean(gaps)))
    seen = ((detected - origin) @ axes.T) / iod
    seen_gap = max(0.0, float(np.mean([seen[b, 1] - seen[a, 1] for a, b in gap_pairs])))
    lip_rgb = mean_colour(
        image,
        lm,
        T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER[::-1][1:-1],
        hole=T.LIP_INNER_UPPER + T.LIP_INNER_LOWER[::-1][1:-1],
    )
    skin_rgb = mean_colour(image, lm, [50, 101, 36, 205, 187, 123, 117, 118])

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
        seen_gap=seen_gap,
    )
