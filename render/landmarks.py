"""Face landmark detection behind one interface.

The default backend is mediapipe 0.10.21's face mesh (478 points with irises; its wheel ships the
model). Points are in pixels of the image given; ``z`` is relative depth in pixels with +z pointing
AWAY from the camera (mediapipe's convention).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MEDIAPIPE_478 = "mediapipe478"


class NoFaceError(ValueError):
    """No face was found in an image."""


@dataclass(frozen=True)
class FaceLandmarks:
    """Landmarks of one face: ``points`` is (N, 3) float32 pixels (x, y, depth)."""

    points: np.ndarray
    scheme: str
    image_size: tuple[int, int]  # (width, height)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the landmarks in pixels."""
        p = self.points
        return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    def transformed(self, scale: float, dx: float, dy: float, image_size: tuple[int, int]) -> FaceLandmarks:
        """Landmarks after scaling the image by ``scale`` and then shifting by (dx, dy)."""
        p = self.points.copy()
        p[:, 0] = p[:, 0] * scale + dx
        p[:, 1] = p[:, 1] * scale + dy
        p[:, 2] = p[:, 2] * scale
        return FaceLandmarks(p.astype(np.float32), self.scheme, image_size)


class LandmarkDetector(Protocol):
    """Finds every face in an RGB uint8 image (H, W, 3)."""

    scheme: str

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]: ...


MAX_DETECT_SIDE = 2048
"""mediapipe sees larger images (or tiles) scaled down to this side: its landmark model reads a 192-pixel
face crop, and full-size buffers of a 40-megapixel picture stay allocated inside its graph."""


class MediaPipeFaceMesh:
    """mediapipe face mesh (478 points, refined lips, eyes and irises)."""

    scheme = MEDIAPIPE_478

    def __init__(self, max_faces: int = 8, min_confidence: float = 0.5) -> None:
        self.max_faces = max_faces
        self.min_confidence = min_confidence
        self._mesh: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._mesh is None:
            try:
                from mediapipe.python.solutions import face_mesh
            except ImportError as e:  # pragma: no cover - install problem
                raise RuntimeError("mediapipe is not installed: pip install mediapipe==0.10.21") from e
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=self.max_faces,
                refine_landmarks=True,
                min_detection_confidence=self.min_confidence,
            )
        return self._mesh

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        """Faces in ``image``. mediapipe's detector sees the image shrunk to a small square, so a face
        that is small in a wide, tall or large picture (a head in a landscape photo, a group) is missed;
        when the whole image gives none (or it is far from square), square tiles of it are searched too
        and faces found twice are kept once."""
        _check_image(image)
        h, w = image.shape[:2]
        faces = self._detect_in(image, 0, 0)
        if faces and max(w, h) <= 1.6 * min(w, h):
            return faces
        # (face, how far inside its tile it lies in face widths): a face cut by a tile's edge is found
        # with guessed landmarks, so where tiles overlap the one seen whole wins
        found = [(f, np.inf) for f in faces]
        for x0, y0, side in _tiles(w, h):
            for f in self._detect_in(image[y0 : y0 + side, x0 : x0 + side], x0, y0, (w, h)):
                bx0, by0, bx1, by1 = f.bbox
                inside = min(bx0 - x0, by0 - y0, x0 + side - bx1, y0 + side - by1) / max(bx1 - bx0, 1.0)
                found.append((f, inside))
        faces = []
        for f, _ in sorted(found, key=lambda t: -t[1]):
            if all(_overlap(f.bbox, g.bbox) < 0.3 for g in faces):
                faces.append(f)
        return faces

    def _detect_in(
        self, image: np.ndarray, x0: int, y0: int, full: tuple[int, int] | None = None
    ) -> list[FaceLandmarks]:
        h, w = image.shape[:2]
        if max(h, w) > MAX_DETECT_SIDE:  # (landmarks are normalized, so they map back onto the full image)
            import cv2

            k = MAX_DETECT_SIDE / max(h, w)
            image = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        with self._lock:
            result = self._get().process(np.ascontiguousarray(image))
        faces: list[FaceLandmarks] = []
        for lms in result.multi_face_landmarks or []:
            pts = np.array([(p.x * w + x0, p.y * h + y0, p.z * w) for p in lms.landmark], dtype=np.float32)
            faces.append(FaceLandmarks(pts, self.scheme, full or (w, h)))
        return faces

    def close(self) -> None:
        with self._lock:
            if self._mesh is not None:
                self._mesh.close()
                self._mesh = None


def _tiles(w: int, h: int, max_tiles: int = 24) -> list[tuple[int, int, int]]:
    """Square tiles (x0, y0, side) covering a w x h image with half-tile overlap: first with the short
    side's length, then half of it (faces small even in the short side), while the count stays small."""
    out: list[tuple[int, int, int]] = []
    side = min(w, h)
    while side >= 160:
        step = side // 2
        xs = list(range(0, max(w - side, 0) + 1, step))
        ys = list(range(0, max(h - side, 0) + 1, step))
        if xs[-1] != w - side:
            xs.append(w - side)
        if ys[-1] != h - side:
            ys.append(h - side)
        level = [(x, y, side) for y in ys for x in xs]
        if len(out) + len(level) > max_tiles:
            break
        if len(level) > 1:
            out += level
        side //= 2
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over the smaller box's area."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / max(small, 1e-9)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("expected an RGB uint8 image of shape (H, W, 3)")


def pick_face(faces: list[FaceLandmarks], index: int | None = None, source: str = "image") -> FaceLandmarks:
    """The face to animate: the largest, or ``index`` in left-to-right order when given."""
    if not faces:
        raise NoFaceError(f"no face found in {source}")
    if index is None:
        return max(faces, key=lambda f: f.area)
    ordered = sorted(faces, key=lambda f: f.bbox[0])
    if not 0 <= index < len(ordered):
        raise NoFaceError(
            f"face index {index} requested but {source} has {len(ordered)} face(s) (0-based, left to right)"
        )
    return ordered[index]


IBUG_68 = "ibug68"


class Dlib68:
    """dlib's HOG face detector + 68-point shape predictor (PyPI dlib-bin + face-recognition-models)."""

    scheme = IBUG_68

    def __init__(self, upsample: int = 1) -> None:
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import dlib
                import face_recognition_models as frm
        except ImportError as e:
            raise RuntimeError("the dlib landmark backend needs: pip install dlib-bin face-recognition-models") from e
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(frm.pose_predictor_model_location())
        self.upsample = upsample
        self._lock = threading.Lock()

    def boxes(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        _check_image(image)
        with self._lock:
            rects = self._detector(image, self.upsample)
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        import dlib

        _check_image(image)
        h, w = image.shape[:2]
        faces = []
        with self._lock:
            for r in self._detector(image, self.upsample):
                s = self._shape(image, r)
                pts = np.array([(p.x, p.y, 0.0) for p in s.parts()], np.float32)
                faces.append(FaceLandmarks(pts, self.scheme, (w, h)))
        del dlib
        return faces


class FaceAlignmentFAN:
    """face-alignment's FAN (2D, 68 points) with weights from a LOCAL folder (nothing is downloaded).

    The folder holds ``fan.pth`` (a state dict of ``face_alignment.models.FAN``) and ``config.json``
    (``{"network_size": 4}``: the architecture travels with the weights). Faces are found with dlib's
    detector when installed, else the whole image is taken as one face box.
    """

    scheme = IBUG_68
    RESOLUTION = 256

    def __init__(self, model_dir: str | Path, device: str = "cpu") -> None:
        import json

        d = Path(model_dir)
        weights = d / "fan.pth"
        cfg = d / "config.json"
        if not weights.is_file() or not cfg.is_file():
            raise FileNotFoundError(
                f"face-alignment model folder {d} must contain fan.pth and config.json "
                "(weights cannot be downloaded at run time)"
            )
        try:
            import torch
            from face_alignment.models import FAN
        except ImportError as e:
            raise RuntimeError("the face-alignment backend needs: pip install face-alignment torch") from e
        conf = json.loads(cfg.read_text())
        net = FAN(int(conf.get("network_size", 4)))
        state = torch.load(weights, map_location=device, weights_only=True)
        net.load_state_dict(state)
        net.eval()
        self.net = net.to(device)
        self.device = device
        self._boxes: Dlib68 | None = None
        try:
            self._boxes = Dlib68()
        except RuntimeError:
            self._boxes = None

    def landmarks_in_box(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68 (x, y) points for the face in ``box`` = (x0, y0, x1, y1)."""
        import cv2
        import torch

        x0, y0, x1, y1 = box
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2 - (y1 - y0) * 0.12])
        size = (x1 - x0 + y1 - y0) / 2 * 1.3  # face-alignment's crop convention: a bit larger than the box
        res = self.RESOLUTION
        s = res / size
        m = np.array([[s, 0, res / 2 - s * centre[0]], [0, s, res / 2 - s * centre[1]]], np.float64)
        crop = cv2.warpAffine(image, m, (res, res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        inp = torch.from_numpy(crop.transpose(2, 0, 1).copy()).float().div(255.0).unsqueeze(0).to(self.device)
        with torch.no_grad():
            out = self.net(inp)
        hm = (out[-1] if isinstance(out, (list, tuple)) else out)[0].cpu().numpy()  # (68, 64, 64)
        n, hh, ww = hm.shape
        flat = hm.reshape(n, -1).argmax(axis=1)
        py, px = np.divmod(flat, ww)
        # sub-pixel: quarter-pixel shift towards the higher neighbour (as FAN's decoder does)
        fx = px.astype(np.float64)
        fy = py.astype(np.float64)
        for i in range(n):
            if 0 < px[i] < ww - 1:
                fx[i] += 0.25 * np.sign(hm[i, py[i], px[i] + 1] - hm[i, py[i], px[i] - 1])
            if 0 < py[i] < hh - 1:
                fy[i] += 0.25 * np.sign(hm[i, py[i] + 1, px[i]] - hm[i, py[i] - 1, px[i]])
        # heatmap -> crop pixels -> image pixels
        cx = (fx + 0.5) * res / ww
        cy = (fy + 0.5) * res / hh
        inv = cv2.invertAffineTransform(m)
        pts = np.stack([cx, cy, np.ones_like(cx)], axis=1) @ inv.T
        return pts.astype(np.float32)

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        _check_image(image)
        h, w = image.shape[:2]
        boxes = self._boxes.boxes(image) if self._boxes is not None else []
        if not boxes and self._boxes is None:
            boxes = [(0.0, 0.0, float(w), float(h))]
        faces = []
        for b in boxes:
            pts = self.landmarks_in_box(image, b)
            faces.append(
                FaceLandmarks(np.column_stack([pts, np.zeros(len(pts))]).astype(np.float32), self.scheme, (w, h))
            )
        return faces


def make_detector(spec: str) -> LandmarkDetector:
    """'mediapipe' (default), 'dlib', or 'fan:/path/to/model_dir'."""
    if spec in ("", "mediapipe"):
        return MediaPipeFaceMesh()
    if spec == "dlib":
        return Dlib68()
    if spec.startswith("fan:"):
        return FaceAlignmentFAN(spec[4:])
    raise ValueError(f"unknown landmark backend {spec!r}: use mediapipe, dlib or fan:MODEL_DIR")
