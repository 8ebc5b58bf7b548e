"""Who is the person and what is the background: mediapipe's selfie segmentation (its model ships in
the mediapipe 0.10.21 wheel; nothing is downloaded).

The rig uses the mask to keep the background still when the head turns: mesh points around the head
that lie on the background do not follow the head, and a ring of points at the person's outline
(hair included) does.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

_lock = threading.Lock()
_model: Any = None


def person_mask(image: np.ndarray) -> np.ndarray | None:
    """(H, W) float32 in [0, 1]: how surely each pixel belongs to a person; None when mediapipe's
    segmentation is not available (the rig then moves the background near the head as before)."""
    global _model
    try:
        with _lock:
            if _model is None:
                from mediapipe.python.solutions import selfie_segmentation

                _model = selfie_segmentation.SelfieSegmentation(model_selection=0)
            mask = _model.process(np.ascontiguousarray(image)).segmentation_mask
    except Exception:  # noqa: BLE001 - an optional refinement: without it the rig is built as before
        return None
    if mask is None:
        return None
    h, w = image.shape[:2]
    m = np.asarray(mask, np.float32)
    if m.shape != (h, w):
        m = np.asarray(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
    return np.clip(m, 0.0, 1.0).astype(np.float32)
