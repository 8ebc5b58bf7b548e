"""The MotionTrack: named animation channels per video frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from audio.types import Speech
    from motion.generator import MotionStyle

# Channel names follow ARKit blendshapes where one exists. Ranges:
#   jawOpen, mouth*, eyeBlink*, eyeWide*, brow*: 0..1 (mouthSmile -1..1, relative to the portrait's own smile)
#   jawOpen is ABSOLUTE: 0 = lips together, 1 = mouth wide open (lip gap ~0.5 inter-ocular distances)
#   eyeLookX / eyeLookY: -1..1 (right/down positive), head*: degrees (yaw right, pitch down, roll clockwise)
CHANNELS: tuple[str, ...] = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthStretch",
    "mouthSmile",
    "mouthRollLower",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "browInnerUp",
    "browDown",
    "eyeLookX",
    "eyeLookY",
    "headYaw",
    "headPitch",
    "headRoll",
    "eyeWideLeft",
    "eyeWideRight",
)
CHANNEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(CHANNELS)}


@dataclass(frozen=True)
class MotionTrack:
    """``values[k, c]`` is channel ``channels[c]`` at video frame k (time k / fps seconds)."""

    fps: float
    values: np.ndarray
    channels: tuple[str, ...] = CHANNELS

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.channels):
            raise ValueError(f"MotionTrack values must be (frames, {len(self.channels)}), got {self.values.shape}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def n_frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def channel(self, name: str) -> np.ndarray:
        """One channel's curve over frames (a view)."""
        try:
            return self.values[:, self.channels.index(name)]
        except ValueError as e:
            raise KeyError(f"unknown motion channel {name!r}; known: {', '.join(self.channels)}") from e

    @staticmethod
    def neutral(n_frames: int, fps: float) -> MotionTrack:
        return MotionTrack(fps, np.zeros((n_frames, len(CHANNELS)), dtype=np.float32))


class MotionSource(Protocol):
    """Motion for one render, made as speech arrives: ``push`` a piece, take the frames (rows of
    ``CHANNELS``) that became final; ``finish`` gives the rest (``MotionStream``, ``AudioMotionStream``)."""

    def push(self, speech: Speech) -> np.ndarray: ...

    def finish(self) -> np.ndarray: ...


class MotionModel(Protocol):
    """The motion component of a pipeline: a ``MotionSource`` for each render (the class ``MotionStream``
    is one)."""

    def __call__(self, fps: float, seed: int, style: MotionStyle) -> MotionSource: ...
