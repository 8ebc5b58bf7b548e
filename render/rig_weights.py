"""The rig's handles and how their motion spreads: the landmark groups that move (lips, jaw line, lids,
brows) or hold still, and the harmonic weights that carry their displacement to every mesh vertex."""

from __future__ import annotations

import numpy as np

from render import topology as T

KIND_FACE, KIND_OUTER, KIND_EYE_R, KIND_EYE_L, KIND_MOUTH = 0, 1, 2, 3, 4
"""Triangle kinds of the rig's mesh: face, the rings around it, the eye and mouth holes."""
LID_REACH = 0.12
"""How far above an upper lid its closing moves the skin (inter-ocular distances): the lid unfolds
below the crease, which stays where it is."""


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


def handle_vertices(local: np.ndarray, n_lm: int, ring_idx: np.ndarray, border_idx: np.ndarray) -> list[int]:
    fixed = [i for i in FIXED if i not in moving_handles()]
    return moving_handles() + fixed + list(ring_idx) + list(border_idx)


def confine_lids(harmonic: np.ndarray, local: np.ndarray, handles: list[int]) -> None:
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


def harmonic_weights(local: np.ndarray, tris: np.ndarray, kind: np.ndarray, handles: list[int]) -> np.ndarray:
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
