"""The value that leaves the renderer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One video frame: RGB uint8 (H, W, 3) and its index (time = index / fps)."""

    index: int
    image: np.ndarray
