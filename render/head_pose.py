"""Head rotation of a face picture against the person's own neutral 3-D shape (the motion encoder's pose).

The rotation is fitted, PnP-style, to the 2-D picture of points that only the skull moves, given the
neutral's 3-D shape (mediapipe's per-point depth, used as it is: it is not flattened, the nose tip lying
0.47-0.51 of the outer eye corners' spread in front of them on the test portraits and videos, where
mediapipe's metric canonical face puts it 0.48). The camera is scaled orthographic (a face's depth is
small beside its distance to the camera); the fit is constrained to a rotation (with scale and shift), so
the points cannot take up part of a nod as a change of shape, as an affine fit lets them.

Which points (the rigid set):

* eye corners, not the lids (blinks and gaze move those);
* the nose: root, bridge, tip and alar base (the nod's lever: 0.4-0.7 IOD in front of the eye corners);
* the cheekbones;
* the face outline at the temples, cheeks and jaw angle, for its position ACROSS the face only: the mesh
  puts those points on the silhouette, whose picture fixes where it lies across but hardly where along its
  near-vertical run, and the outline's vertical place is where a nod reads short.

Brows, forehead, lids, lips, jaw and chin are left out: expressions move them, and a fit that uses them
reads a raised brow or an opened jaw as a nod.
"""

from __future__ import annotations

import numpy as np

EYE_CORNERS = [33, 133, 263, 362]
NOSE = [168, 6, 197, 195, 5, 4, 1, 98, 327, 64, 294, 48, 278, 129, 358]  # root, bridge, tip, alar base
CHEEKBONES = [116, 345, 117, 346, 123, 352, 50, 280]
OUTLINE = [127, 356, 234, 454, 93, 323, 162, 389]  # temples to jaw angle: their x only
POSE_POINTS = EYE_CORNERS + NOSE + CHEEKBONES + OUTLINE
_N_FULL = len(POSE_POINTS) - len(OUTLINE)
_W = np.ones((len(POSE_POINTS), 2))
_W[_N_FULL:, 1] = 0.0  # the outline's vertical place carries no weight
_ITERATIONS = 6


def _initial(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation from an affine fit of the picture b (P, 2) to centred points a (P, 3), made orthonormal."""
    m = np.linalg.lstsq(a, b - b.mean(axis=0), rcond=None)[0].T  # (2, 3)
    u, _, vt = np.linalg.svd(m, full_matrices=False)
    r2 = u @ vt
    return np.stack([r2[0], r2[1], np.cross(r2[0], r2[1])])


def _rotvec_matrix(w: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        return np.eye(3)
    k = w / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * (kx @ kx)


def head_rotation(ref: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) taking the neutral's 3-D points ``ref`` (478, 3) to the pose whose picture is ``xy``
    (478, 2): a weighted least-squares fit of scale, shift and rotation on the rigid set (Gauss-Newton
    from an affine start)."""
    a = np.asarray(ref, np.float64)[POSE_POINTS]
    b = np.asarray(xy, np.float64)[POSE_POINTS]
    a = a - a.mean(axis=0)
    r = _initial(a[:_N_FULL], b[:_N_FULL])
    sw = np.sqrt(_W)
    bc = b - (_W * b).sum(axis=0) / _W.sum(axis=0)
    zeros = np.zeros(len(a))
    for _ in range(_ITERATIONS):
        q = a @ r.T
        p = q[:, :2] - (_W * q[:, :2]).sum(axis=0) / _W.sum(axis=0)
        s = float((_W * p * bc).sum() / max(float((_W * p * p).sum()), 1e-12))
        res = s * p - bc
        # a small rotation w moves a point q by w x q: its picture by (w_y q_z - w_z q_y, w_z q_x - w_x q_z)
        jx = s * np.stack([zeros, q[:, 2], -q[:, 1]], axis=1)
        jy = s * np.stack([-q[:, 2], zeros, q[:, 0]], axis=1)
        jx -= (_W[:, :1] * jx).sum(axis=0) / _W[:, 0].sum()
        jy -= (_W[:, 1:] * jy).sum(axis=0) / _W[:, 1].sum()
        jac = np.concatenate([jx * sw[:, :1], jy * sw[:, 1:]])
        rhs = -np.concatenate([res[:, 0] * sw[:, 0], res[:, 1] * sw[:, 1]])
        w = np.linalg.lstsq(jac, rhs, rcond=None)[0]
        r = _rotvec_matrix(w) @ r
        if float(np.abs(w).max()) < 1e-6:
            break
    return r
