"""Face landmark detection behind one interface.

The default backend is mediapipe 0.10.21's face mesh (478 points with irises; its wheel ships the
model). Points are in pixels of the image given; ``z`` is relative depth in pixels with +z pointing
AWAY from the camera (mediapipe's convention).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
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
        _check_image(image)
        h, w = image.shape[:2]
        with self._lock:
            result = self._get().process(np.ascontiguousarray(image))
        faces: list[FaceLandmarks] = []
        for lms in result.multi_face_landmarks or []:
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lms.landmark], dtype=np.float32)
            faces.append(FaceLandmarks(pts, self.scheme, (w, h)))
        return faces

    def close(self) -> None:
        with self._lock:
            if self._mesh is not None:
                self._mesh.close()
                self._mesh = None


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
