"""A canonical 478-point face mesh, fitted to any sparse set of landmarks.

The warp rig needs mediapipe's 478-point layout. Other detectors (dlib and face-alignment give 68
points) and user-given points for faces no detector finds (cartoons, animals, paintings: eyes, nose
tip, mouth corners) are turned into that layout by fitting a canonical mesh: a similarity transform
from the correspondences, then a thin-plate-spline correction when there are enough of them.

The canonical mesh (``assets/canonical478.npy``: 478 x 3, face frame, inter-ocular units) is the mean
of mediapipe meshes of public-domain portraits, built by ``python -m render.canonical build FACES...``.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from render import topology as T
from render.landmarks import MEDIAPIPE_478, FaceLandmarks

# iBUG 68-point index -> mediapipe index of the same anatomical point
IBUG68_TO_MP: tuple[int, ...] = (
    127,
    234,
    93,
    132,
    58,
    172,
    136,
    149,
    152,
    378,
    365,
    397,
    288,
    361,
    323,
    454,
    356,  # jaw 0-16
    70,
    63,
    105,
    66,
    107,
    336,
    296,
    334,
    293,
    300,  # brows 17-26
    168,
    197,
    5,
    4,
    98,
    97,
    2,
    326,
    327,  # nose 27-35
    33,
    160,
    158,
    133,
    153,
    144,
    362,
    385,
    387,
    263,
    373,
    380,  # eyes 36-47
    61,
    39,
    37,
    0,
    267,
    269,
    291,
    405,
    314,
    17,
    84,
    181,  # outer lips 48-59
    78,
    82,
    13,
    312,
    308,
    317,
    14,
    87,  # inner lips 60-67
)

# Five points a user can click on any face: right eye centre, left eye centre (subject's), nose tip,
# right mouth corner, left mouth corner. Eye centres are means of the eye contours.
FIVE_POINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left")


def _eye_centres(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = pts[T.R_EYE_UPPER + T.R_EYE_LOWER].mean(axis=0)
    left = pts[T.L_EYE_UPPER + T.L_EYE_LOWER].mean(axis=0)
    return r, left


def to_face_frame(points: np.ndarray) -> np.ndarray:
    """Mediapipe 478 points (pixels) -> face frame (origin between the eyes, IOD units)."""
    p = points.astype(np.float64)
    r, left = _eye_centres(p)
    iod = float(np.linalg.norm((left - r)[:2]))
    origin = (r + left) / 2
    ex = (left - r) / np.linalg.norm(left - r)
    down = p[T.CHIN] - origin
    ey = down - ex * (down @ ex)
    ey /= np.linalg.norm(ey)
    ez = np.cross(ex, ey)
    return ((p - origin) @ np.stack([ex, ey, ez]).T) / iod


@lru_cache(maxsize=1)
def canonical_mesh() -> np.ndarray:
    """(478, 3) canonical face in the face frame."""
    path = Path(str(files("render").joinpath("assets/canonical478.npy")))
    if not path.exists():
        raise FileNotFoundError(f"canonical mesh missing: {path} (build it with python -m render.canonical build)")
    return np.load(path).astype(np.float64)


def five_points(mesh: np.ndarray) -> np.ndarray:
    """The five clickable points of a 478-point mesh, (5, 2 or 3)."""
    r, left = _eye_centres(mesh)
    return np.stack([r, left, mesh[T.NOSE_TIP], mesh[61], mesh[291]])


def fit_mesh(
    target: np.ndarray,
    source_idx: np.ndarray | None,
    image_size: tuple[int, int],
    source_points: np.ndarray | None = None,
) -> FaceLandmarks:
    """Fit the canonical mesh to ``target`` (K, 2) pixel points.

    Correspondences are the canonical points ``canonical[source_idx]`` or, when given, the canonical
    ``source_points`` (K, 3). A similarity (rotation, scale, translation) is solved by least squares;
    with 12 or more correspondences a thin-plate spline then moves the mesh onto them exactly.
    """
    can = canonical_mesh()
    src = can[source_idx] if source_points is None else np.asarray(source_points, np.float64)
    tgt = np.asarray(target, np.float64)[:, :2]
    if len(src) != len(tgt) or len(tgt) < 3:
        raise ValueError(f"need at least 3 matching points to fit a face, got {len(tgt)}")
    # similarity by Umeyama (2D)
    ms, mt = src[:, :2].mean(axis=0), tgt.mean(axis=0)
    a = src[:, :2] - ms
    b = tgt - mt
    cov = b.T @ a / len(a)
    u, s, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, d]) @ vt
    scale = float((s * np.array([1.0, d])).sum() / max((a**2).sum() / len(a), 1e-12))
    if scale <= 0:
        raise ValueError("the given points do not describe a face (degenerate layout)")
    xy = (can[:, :2] - ms) @ rot.T * scale + mt
    if len(tgt) >= 12:
        from scipy.interpolate import RBFInterpolator

        fitted_src = (src[:, :2] - ms) @ rot.T * scale + mt
        resid = tgt - fitted_src
        rbf = RBFInterpolator(fitted_src, resid, kernel="thin_plate_spline", smoothing=1e-6)
        xy = xy + rbf(xy)
    z = can[:, 2] * scale
    pts = np.column_stack([xy, z]).astype(np.float32)
    return FaceLandmarks(pts, MEDIAPIPE_478, image_size)


def fit_ibug68(points68: np.ndarray, image_size: tuple[int, int]) -> FaceLandmarks:
    """478-point mesh from 68 iBUG landmarks (dlib, face-alignment)."""
    if points68.shape[0] != 68:
        raise ValueError(f"expected 68 landmarks, got {points68.shape[0]}")
    return fit_mesh(points68[:, :2], np.array(IBUG68_TO_MP), image_size)


def fit_five(points5: np.ndarray, image_size: tuple[int, int]) -> FaceLandmarks:
    """478-point mesh from five user points: right eye, left eye, nose tip, right and left mouth corner
    (the subject's right and left: the subject's right eye is on the image's left for a front view)."""
    p = np.asarray(points5, np.float64)
    if p.shape != (5, 2):
        raise ValueError(f"expected 5 points (x, y): {', '.join(FIVE_POINT_NAMES)}; got shape {p.shape}")
    if np.linalg.norm(p[1] - p[0]) < 4:
        raise ValueError("the two eye points are less than 4 pixels apart")
    return fit_mesh(p, None, image_size, source_points=five_points(canonical_mesh()))


def build(faces: list[str]) -> np.ndarray:
    """Mean face-frame mesh of the given portraits (mediapipe)."""
    import cv2

    from render.landmarks import MediaPipeFaceMesh, pick_face

    det = MediaPipeFaceMesh()
    meshes = []
    for f in faces:
        img = cv2.imread(f)
        if img is None:
            raise ValueError(f"cannot read {f}")
        found = det.detect(np.ascontiguousarray(img[:, :, ::-1]))
        if found:
            meshes.append(to_face_frame(pick_face(found).points))
    if not meshes:
        raise ValueError("no faces found to build the canonical mesh")
    return np.mean(meshes, axis=0).astype(np.float32)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "build":
        mesh = build(sys.argv[2:])
        out = Path(__file__).parent / "assets" / "canonical478.npy"
        out.parent.mkdir(exist_ok=True)
        np.save(out, mesh)
        print(f"wrote {out} from {len(sys.argv) - 2} portraits")
    else:
        print("usage: python -m render.canonical build FACE_IMAGE...")
