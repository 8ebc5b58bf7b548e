"""An independent judge of rendered frames: dlib's 68 landmarks and face embeddings.

dlib is not what drives the warp (that is mediapipe), so these figures check the renderer from the
outside: does the measured inner-lip opening follow the commanded jaw, do the eyes close on a blink,
is a face found in every frame, and does every frame still look like the same person.

Needs the ``judge`` extra (PyPI ``dlib-bin`` and ``face-recognition-models``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from motion.types import CHANNEL_INDEX, CHANNELS
from render.warp import WarpRenderer
from talker.pipeline import Pipeline

JAW_SWEEP = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
HEAD_POSES = [(15, 0, 0), (-15, 0, 0), (0, 10, 0), (0, -10, 0), (0, 0, 12), (8, -6, -8)]


class Judge:
    """dlib frontal face detector + 68-point shape predictor + ResNet face embedding."""

    def __init__(self) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import dlib
                import face_recognition_models as frm
        except ImportError as e:
            raise RuntimeError("the quality judge needs: pip install dlib-bin face-recognition-models") from e
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(frm.pose_predictor_model_location())
        self.encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def analyse(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(68x2 landmarks, 128-d embedding) of the largest face, or None when no face is found."""
        rects = self.detector(image, 1)
        if not rects:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        shape = self.shape(image, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        emb = np.array(self.encoder.compute_face_descriptor(image, shape, 1))
        return pts, emb


def inner_lip_gap(pts: np.ndarray) -> float:
    """Mean inner-lip opening (dlib points 61-63 vs 67-65) over the inter-ocular distance."""
    iod = float(np.linalg.norm(pts[36:42].mean(axis=0) - pts[42:48].mean(axis=0)))
    gap = np.mean([np.linalg.norm(pts[a] - pts[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
    return float(gap / iod)


def eye_aspect_ratio(pts: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes (Soukupova & Cech 2016)."""

    def ear(e: np.ndarray) -> float:
        return float((np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / (2 * np.linalg.norm(e[0] - e[3])))

    return 0.5 * (ear(pts[36:42]) + ear(pts[42:48]))


EAR_SCALES = (1.0, 1.25, 1.5)


def robust_ear(judge: Judge, image: np.ndarray) -> float:
    """Eye aspect ratio of ``image`` as the median over a few scales of it (nan if no face at any).

    dlib's shape predictor is a regression forest on pixel differences: on one frame its eye points can
    move by a pixel or two for a change of 3 gray levels elsewhere (measured on our renders: EAR 0.232 ->
    0.216 for the same open eyes), which on a 30-pixel-wide eye swings the ratio by tens of percent.
    Reading the same frame at three sizes and taking the median measures the eyes, not that noise.
    """
    import cv2

    ears = []
    for s in EAR_SCALES:
        img = image if s == 1.0 else cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
        a = judge.analyse(img)
        if a is not None:
            ears.append(eye_aspect_ratio(a[0]))
    return float(np.median(ears)) if ears else float("nan")


@dataclass
class QualityReport:
    face: str
    frames: int
    detected: int
    jaw_r: float
    ear_open: float
    ear_blink: float
    max_embedding_distance: float  # over every frame
    max_embedding_distance_eyes_open: float  # over every frame but the blink

    @property
    def ear_drop(self) -> float:
        return 1.0 - self.ear_blink / max(self.ear_open, 1e-9)

    def row(self) -> str:
        return (
            f"{Path(self.face).name:34s} found {self.detected}/{self.frames}  jaw r={self.jaw_r:.3f}  "
            f"EAR drop {100 * self.ear_drop:.0f}%  max embedding distance {self.max_embedding_distance:.3f} "
            f"(eyes open {self.max_embedding_distance_eyes_open:.3f})"
        )


def _values(**kw: float) -> np.ndarray:
    v = np.zeros(len(CHANNELS), np.float32)
    for k, x in kw.items():
        v[CHANNEL_INDEX[k]] = x
    return v


def evaluate(face: str | Path, judge: Judge, pipeline: Pipeline | None = None, size: int = 512) -> QualityReport:
    """Render a jaw sweep, a blink and head poses of one portrait and judge every frame with dlib."""
    p = pipeline or Pipeline()
    avatar = p.prepare_avatar(face, (size, size))
    r = WarpRenderer(avatar.rig)
    src = judge.analyse(avatar.rig.image)
    if src is None:
        raise RuntimeError(f"dlib finds no face in the portrait {face} itself")
    src_emb = src[1]
    frames: list[tuple[str, float, np.ndarray]] = []
    for j in JAW_SWEEP:
        frames.append(("jaw", j, r.render(_values(jawOpen=j))))
    frames.append(("open", 0.0, r.render(_values(jawOpen=0.0))))
    frames.append(("blink", 1.0, r.render(_values(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))))
    for yaw, pitch, roll in HEAD_POSES:
        frames.append(("pose", 0.0, r.render(_values(headYaw=yaw, headPitch=pitch, headRoll=roll, jawOpen=0.3))))
    found: list[Any] = [judge.analyse(f) for _, _, f in frames]
    detected = sum(a is not None for a in found)
    jaw_cmd = [v for (kind, v, _), a in zip(frames, found) if kind == "jaw" and a is not None]
    jaw_meas = [inner_lip_gap(a[0]) for (kind, _, _), a in zip(frames, found) if kind == "jaw" and a is not None]
    jaw_r = float(np.corrcoef(jaw_cmd, jaw_meas)[0, 1]) if len(jaw_cmd) > 2 else float("nan")
    ear_open = robust_ear(judge, next(f for k, _, f in frames if k == "open"))
    ear_blink = robust_ear(judge, next(f for k, _, f in frames if k == "blink"))
    dists = [float(np.linalg.norm(a[1] - src_emb)) for a in found if a is not None]
    open_d = [float(np.linalg.norm(a[1] - src_emb)) for (k, _, _), a in zip(frames, found) if a and k != "blink"]
    return QualityReport(
        str(face), len(frames), detected, jaw_r, float(ear_open), float(ear_blink), max(dists), max(open_d)
    )
