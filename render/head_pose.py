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
_N_FULL = len(POSE_POINTS) - len(OUTLINE)  # the first _N_FULL points count across and along, the rest across
_ITERATIONS = 2  # from the affine start, two steps settle the angles to 0.01 degrees
_STEP_DONE = 1e-4  # radians (0.006 degrees): a smaller update ends the fit


def _rotvec_matrix(w: np.ndarray) -> np.ndarray:
    theta = float(np.sqrt(w @ w))
    if theta < 1e-12:
        return np.eye(3)
    k = w / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * (kx @ kx)


class HeadPose:
    """The head rotation fit against one neutral shape ``ref`` (478, 3); call it with a picture (478, 2)."""

    def __init__(self, ref: np.ndarray) -> None:
        a = np.asarray(ref, np.float64)[POSE_POINTS]
        self._a = a - a.mean(axis=0)
        core = self._a[:_N_FULL]
        self._core_pinv = np.linalg.pinv(core - core.mean(axis=0))  # (3, n): the affine start's solve

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """Rotation (3, 3) taking the neutral to the pose whose picture is ``xy``: least squares over
        scale, shift and rotation on the rigid set (Gauss-Newton from an affine start), the outline's
        points counting across the face only."""
        a, n = self._a, _N_FULL
        b = np.asarray(xy, np.float64)[POSE_POINTS]
        bx = b[:, 0] - b[:, 0].mean()
        by = b[:n, 1] - b[:n, 1].mean()
        m = (self._core_pinv @ np.stack([b[:n, 0] - b[:n, 0].mean(), by], axis=1)).T  # (2, 3)
        u, _, vt = np.linalg.svd(m, full_matrices=False)
        r2 = u @ vt
        r = np.stack([r2[0], r2[1], np.cross(r2[0], r2[1])])
        for _ in range(_ITERATIONS):
            q = a @ r.T
            cx, cy, cz = (q - q.mean(axis=0)).T  # every point, across
            core = q[:n] - q[:n].mean(axis=0)  # the core points, along
            dx, dy, dz = core.T
            s = float((cx @ bx + dy @ by) / max(float(cx @ cx + dy @ dy), 1e-12))
            rx, ry = s * cx - bx, s * dy - by
            # a small rotation w moves a point q by w x q, its picture by (w_y q_z - w_z q_y, w_z q_x - w_x q_z):
            # the normal equations of that linearised fit
            xz, yz = float(dx @ dz), float(cz @ cy)
            jtj = np.array([[dz @ dz, 0.0, -xz], [0.0, cz @ cz, -yz], [-xz, -yz, cy @ cy + dx @ dx]])
            jtr = np.array([-(dz @ ry), cz @ rx, -(cy @ rx) + dx @ ry]) / s
            w = np.linalg.solve(jtj, -jtr)
            r = _rotvec_matrix(w) @ r
            if float(np.abs(w).max()) < _STEP_DONE:
                break
        return r
