"""Animate anything: a face from five user points where no detector finds one.

Cartoons, animals, drawings and objects rarely give mediapipe a face. The user clicks five points
instead — the subject's right eye centre, left eye centre, nose tip, right and left mouth corner (the
subject's right is the image's left in a front view) — and the canonical 478-point mesh is fitted to
them (``render.canonical.fit_five``). The rest is the usual path: frame, rig, warp.

Points are pixels of the image as loaded (EXIF orientation applied). They may lie outside the image
(a mouth-only drawing has its eyes above the top edge): the mesh is fitted all the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from render import topology as T
from render.canonical import FIVE_POINT_NAMES, fit_five, five_points
from render.landmarks import FaceLandmarks, LandmarkDetector, NoFaceError
from render.rig import build_rig
from talker.portrait import DEFAULT_SIZE, Avatar, find_face, frame_portrait, load_image

N_POINTS = len(FIVE_POINT_NAMES)
MAX_COORD_PX = 100_000.0
"""Largest absolute coordinate accepted (pixels); anything bigger is a typo, not a face."""


class PointsError(ValueError):
    """The five points cannot be used (wrong count, not numbers, degenerate layout)."""


def parse_points(text: str) -> np.ndarray:
    """``"x,y;x,y;x,y;x,y;x,y"`` -> (5, 2) float64 pixels, in the order of ``FIVE_POINT_NAMES``.

    Whitespace is ignored; a trailing ``;`` is allowed. Errors name the bad piece.
    """
    if not isinstance(text, str) or not text.strip():
        raise PointsError(f"points are empty: give {N_POINTS} points as x,y;x,y;... ({', '.join(FIVE_POINT_NAMES)})")
    pieces = [p.strip() for p in text.strip().rstrip(";").split(";")]
    if len(pieces) != N_POINTS:
        raise PointsError(
            f"points {text!r}: expected {N_POINTS} x,y pairs separated by ';' ({', '.join(FIVE_POINT_NAMES)}), "
            f"got {len(pieces)}"
        )
    out = np.zeros((N_POINTS, 2), np.float64)
    for i, (piece, name) in enumerate(zip(pieces, FIVE_POINT_NAMES)):
        xy = [c.strip() for c in piece.split(",")]
        if len(xy) != 2:
            raise PointsError(f"point {i + 1} ({name}) {piece!r} is not x,y")
        try:
            x, y = float(xy[0]), float(xy[1])
        except ValueError as e:
            raise PointsError(f"point {i + 1} ({name}) {piece!r} is not two numbers") from e
        if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > MAX_COORD_PX:
            raise PointsError(f"point {i + 1} ({name}) {piece!r} is out of range (|x|, |y| <= {MAX_COORD_PX:g} px)")
        out[i] = (x, y)
    check_points(out)
    return out


def format_points(points: np.ndarray | Sequence[Sequence[float]]) -> str:
    """The inverse of ``parse_points``: ``"x,y;x,y;..."`` with up to one decimal."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return ";".join(f"{_num(x)},{_num(y)}" for x, y in p)


def _num(v: float) -> str:
    r = round(float(v), 1)
    return str(int(r)) if r == int(r) else f"{r:.1f}"


def check_points(points: np.ndarray) -> None:
    """Raise ``PointsError`` unless the five points look like a face in front view.

    Checks: the eyes are at least 4 px apart, the subject's right eye is on the image's left of the left
    eye (else the points were given in the wrong order), the mouth lies below the eyes and the nose
    between them (both measured along the direction perpendicular to the eye line).
    """
    p = np.asarray(points, np.float64)
    if p.shape != (N_POINTS, 2):
        raise PointsError(f"expected {N_POINTS} points (x, y), got shape {p.shape}")
    r_eye, l_eye, nose, m_r, m_l = p
    eye_vec = l_eye - r_eye
    iod = float(np.hypot(*eye_vec))
    if iod < 4:
        raise PointsError(f"the two eye points are {iod:.1f} px apart; they must be at least 4 px apart")
    ex = eye_vec / iod
    ey = np.array([-ex[1], ex[0]])  # image "down" when the eye line points right
    if ex[0] <= 0:
        raise PointsError(
            "the subject's right eye (first point) must be on the image's left of the left eye (second point); "
            f"got {format_points(p[:2])}: swap them, or give them in the order {', '.join(FIVE_POINT_NAMES)}"
        )
    mid = (r_eye + l_eye) / 2
    nose_d = float((nose - mid) @ ey)
    mouth_d = float(((m_r + m_l) / 2 - mid) @ ey)
    if mouth_d <= 0.1 * iod:
        raise PointsError("the mouth corners (points 4 and 5) must lie below the eyes")
    if not 0 < nose_d < mouth_d:
        raise PointsError("the nose tip (point 3) must lie between the eyes and the mouth")
    if float((m_l - m_r) @ ex) <= 0:
        raise PointsError("the subject's right mouth corner (point 4) must be on the image's left of point 5")


CORRECTION_SIGMA_IOD = 0.6
"""Reach of the exact-fit correction around each clicked point, in inter-ocular distances."""


def face_from_points(points: np.ndarray, image_size: tuple[int, int], exact: bool = True) -> FaceLandmarks:
    """The 478-point mesh (pixels) fitted to five points in an image of ``image_size`` = (width, height).

    ``fit_five`` places the canonical face by a similarity transform, which keeps human proportions: a
    cat's small mouth under wide-set eyes would get human-wide lips. With ``exact`` the mesh is then bent
    to pass through all five points: a Gaussian radial-basis displacement (reach ``CORRECTION_SIGMA_IOD``)
    that interpolates the five residuals and fades to nothing away from them.

    Five points say nothing about the lip gap, so the mouth is taken as closed: the inner lip contours
    are joined (the canonical mesh, a mean of smiling portraits, is slightly open; an open source mouth
    would make the rig paint teeth over a drawing's closed lips).
    """
    p = np.asarray(points, np.float64)
    check_points(p)
    try:
        face = fit_five(p, image_size)
    except ValueError as e:
        raise PointsError(f"cannot fit a face to points {format_points(p)}: {e}") from e
    pts = face.points.astype(np.float64)
    if exact:
        pts[:, :2] += _rbf_correction(five_points(pts), p, pts[:, :2], CORRECTION_SIGMA_IOD * _iod(p))
    upper, lower = np.array(T.LIP_INNER_UPPER), np.array(T.LIP_INNER_LOWER)
    seam = 0.5 * (pts[upper] + pts[lower])
    pts[upper] = seam
    pts[lower] = seam
    return FaceLandmarks(pts.astype(np.float32), face.scheme, face.image_size)


def _iod(p: np.ndarray) -> float:
    return float(np.hypot(*(p[1] - p[0])))


def _rbf_correction(fitted: np.ndarray, target: np.ndarray, at: np.ndarray, sigma: float) -> np.ndarray:
    """Displacements at ``at`` (N, 2) of the Gaussian RBF field that moves ``fitted`` (5, 2+) onto ``target``."""
    src = fitted[:, :2]
    resid = target - src
    k = np.exp(-((src[:, None, :] - src[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))
    w = np.linalg.solve(k + 1e-9 * np.eye(len(src)), resid)
    ka = np.exp(-((at[:, None, :] - src[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))
    return ka @ w


def avatar_from_points(
    image: str | Path | np.ndarray,
    points: np.ndarray | str,
    size: tuple[int, int] | None = DEFAULT_SIZE,
    framing: str = "bust",
) -> Avatar:
    """An ``Avatar`` from an image and five points (pixels of the image), framed like a detected face.

    ``points`` is a (5, 2) array or the ``"x,y;..."`` text of ``parse_points``.
    """
    pts = parse_points(points) if isinstance(points, str) else np.asarray(points, np.float64)
    if isinstance(image, np.ndarray):
        rgb, source = image, "the given image"
    else:
        rgb, source = load_image(image), str(image)
    h, w = rgb.shape[:2]
    face = face_from_points(pts, (w, h))
    framed = frame_portrait(rgb, face, size, framing)
    return Avatar(build_rig(framed.image, framed.face), f"{source} (5 points)")


def avatar_for(
    image: str | Path | np.ndarray,
    points: np.ndarray | str | None,
    detector: LandmarkDetector,
    size: tuple[int, int] | None = DEFAULT_SIZE,
    face_index: int | None = None,
    framing: str = "bust",
) -> Avatar:
    """The avatar of ``image``: from ``points`` when given, else from the detector's face, framed by
    ``framing`` (``talker.portrait.FRAMINGS``).

    When the detector finds no face, the error says how to give points instead.
    """
    if points is not None:
        return avatar_from_points(image, points, size, framing)
    if isinstance(image, np.ndarray):
        rgb, source = image, "the given image"
    else:
        rgb, source = load_image(image), str(image)
    try:
        face = find_face(rgb, detector, source, face_index)
    except NoFaceError as e:
        raise NoFaceError(
            f"{e}; for a cartoon, animal or object give five points instead: --points "
            f"'x,y;x,y;x,y;x,y;x,y' ({', '.join(FIVE_POINT_NAMES)}, in pixels)"
        ) from e
    framed = frame_portrait(rgb, face, size, framing)
    return Avatar(build_rig(framed.image, framed.face), source)


def load_annotations(path: str | Path) -> dict[str, np.ndarray]:
    """A JSON file ``{"image name": {"points": [[x, y] x 5], ...}, ...}`` -> {name: (5, 2) points}."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, np.ndarray] = {}
    for name, entry in data.items():
        if name.startswith("_"):
            continue
        pts = entry["points"] if isinstance(entry, dict) else entry
        arr = np.asarray(pts, np.float64)
        try:
            check_points(arr)
        except PointsError as e:
            raise PointsError(f"{path}: {name}: {e}") from e
        out[name] = arr
    return out
