"""The value that leaves the renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from render.rig import FaceRig


@dataclass(frozen=True)
class Frame:
    """One video frame: RGB uint8 (H, W, 3) and its index (time = index / fps)."""

    index: int
    image: np.ndarray


class FrameRenderer(Protocol):
    """Draws frames of one rigged portrait: a row of motion channels in, an RGB uint8 image out (a new array
    each call: sinks may keep it while later frames are drawn)."""

    def render(self, values: np.ndarray) -> np.ndarray: ...


class Renderer(Protocol):
    """The renderer component of a pipeline: a ``FrameRenderer`` for a rig (the class ``WarpRenderer`` is
    one)."""

    def __call__(self, rig: FaceRig) -> FrameRenderer: ...
