"""Index sets of the mediapipe 478-point face mesh used by the rig (derived from its connection lists)."""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import numpy as np

# Ordered contours (subject's right = image left). Corners are shared by upper and lower lists.
LIP_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIP_OUTER_LOWER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIP_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIP_INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
MOUTH_CORNERS = [61, 291, 78, 308]

R_EYE_UPPER = [33, 246, 161, 160, 159, 158, 157, 173, 133]
R_EYE_LOWER = [33, 7, 163, 144, 145, 153, 154, 155, 133]
L_EYE_UPPER = [263, 466, 388, 387, 386, 385, 384, 398, 362]
L_EYE_LOWER = [263, 249, 390, 373, 374, 380, 381, 382, 362]
R_IRIS = [468, 469, 470, 471, 472]
L_IRIS = [473, 474, 475, 476, 477]
R_BROW = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]
L_BROW = [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]

FACE_OVAL = [
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
]
CHIN = 152
NOSE_TIP = 1
NOSE_RIGID = [1, 4, 5, 6, 168, 197, 195, 98, 327, 48, 278, 64, 294, 129, 358]
FOREHEAD = [10, 151, 9, 8, 109, 338, 67, 297, 69, 299, 108, 337]


_NOT_FACES = {(49, 64, 129), (279, 294, 358)}


@lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """(M, 3) int32 triangles of mediapipe's face tessellation (eyes and mouth are holes)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    edges = {tuple(sorted(e)) for e in FACEMESH_TESSELATION}
    adj: dict[int, set[int]] = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    tris = set()
    for a, b in edges:
        for c in adj[a] & adj[b]:
            tris.add(tuple(sorted((a, b, c))))
    # Two spots by the nostrils form 4-cliques: the outer triangle of each is not a face.
    out = [t for t in sorted(tris) if t not in _NOT_FACES]
    return np.array(out, dtype=np.int32)


def mesh_edges() -> np.ndarray:
    tris = mesh_triangles()
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [0, 2]]])
    return np.unique(np.sort(e, axis=1), axis=0)
