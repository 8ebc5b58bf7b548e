"""Live frames drawn only as far as they need: a frame in which nothing moved visibly is the last one again,
and one in which only the eyes moved (a blink, a glance) draws just the eyes' box over the last one.

Movement is measured against the last frame drawn, on every vertex of the mesh and on the irises (gaze),
so slow drift never adds up past the threshold before a frame is drawn anew. Most still frames are known
still from the channel values alone: per vertex and head-rotation channel, how far the vertex moves per
degree is measured on the rig once (``_head_gains``), which bounds a small turn's movement without
deforming the mesh; ``StillFrames`` makes that call where the renderer is not (a session's render worker, whose
renderer runs in another process).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from motion.types import CHANNEL_INDEX, CHANNELS
from render import topology as T
from render.warp import GAZE_PX, WarpRenderer

REUSE_PX = 0.25
"""A frame in which nothing would move farther than this (pixels) since the last frame drawn is that
frame again. Idle motion is slow: over 30 s of idle on the astronaut, the median frame moves 0.07 px."""
LISTEN_REUSE_PX = 0.5
"""The same while the avatar listens (no speech in the frame): the head's sway is then drawn in steps of
about half a pixel (a 512x512 face sways 2-6 px a second), half as often as at ``REUSE_PX``."""


def reuse_px(listening: bool) -> float:
    """How far no point may move for a frame to be the last one drawn again: more while listening."""
    return LISTEN_REUSE_PX if listening else REUSE_PX


_EYE_CHANNELS = [
    CHANNEL_INDEX[c] for c in ("eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft", "eyeWideRight", "eyeLookX", "eyeLookY")
]
_GAZE = [CHANNEL_INDEX["eyeLookX"], CHANNEL_INDEX["eyeLookY"]]
_HEAD = [CHANNEL_INDEX[c] for c in ("headYaw", "headPitch", "headRoll")]
_BOUNDED = np.zeros(len(CHANNELS), bool)
_BOUNDED[_HEAD + _GAZE] = True
_EYE_REGION = {
    "right": T.R_EYE_UPPER + T.R_EYE_LOWER + T.R_BROW,
    "left": T.L_EYE_UPPER + T.L_EYE_LOWER + T.L_BROW,
}
_EYE_PAD_IOD = 0.2  # the eyes' box reaches this far (inter-ocular distances) past lids and brows: the shut
# lid's patch reaches 0.07 past the corners plus half its unfolding crease (0.16), and its lashes 0.04 below
_MAP_MARGIN_PX = 10  # drawn past the eyes' box and dropped: the upsampled map is clamped at a clip's edge
_CHANGED_PX = 0.1  # vertices the eyes' channels move less than this (a pixel's tenth) may lie outside the box
_GAIN_SAFETY = 1.2  # head gains are measured at a few poses; between them a turn moves points a little more


class Drawn(Enum):
    """How ``ReusingRenderer.render`` made a frame."""

    REUSED = "reused"  # the last frame again
    EYES = "eyes"  # the last frame with the eyes' box drawn anew, the head held where it was drawn
    WHOLE = "whole"


@dataclass
class _Last:
    values: np.ndarray  # what the frame shows (eyes-only frames: the eyes' channels over the head drawn before)
    verts: np.ndarray  # (Nv, 3) their mesh
    frame: np.ndarray


class StillFrames:
    """Which frames a ``ReusingRenderer`` would reuse, told from the channel values alone: a session that
    renders in another process asks it only for the others. Follows what the renderer drew (``drawn``)."""

    def __init__(self, gains: np.ndarray, eye_w: float) -> None:
        """``gains``: ``ReusingRenderer.gains`` (per vertex and head-rotation channel, pixels per degree);
        ``eye_w``: the rig's eye width (pixels)."""
        self.gains = np.asarray(gains, np.float64)
        self.eye_w = eye_w
        self.last: np.ndarray | None = None  # the values the last frame drawn shows

    def still(self, values: np.ndarray, max_px: float) -> bool:
        """True when ``values`` surely move nothing ``max_px`` past the last frame drawn: only the head's
        rotation and the gaze differ, and by little enough (else the renderer decides)."""
        if self.last is None:
            return False
        values = np.asarray(values, np.float64)
        d = np.abs(values - self.last)
        if d[~_BOUNDED].any():
            return False
        gaze = max(d[c] * g for c, g in zip(_GAZE, GAZE_PX)) * self.eye_w
        return float((self.gains @ d[_HEAD]).max()) + gaze < max_px

    def drawn(self, values: np.ndarray, how: Drawn) -> None:
        """The renderer made the frame of ``values`` as ``how``."""
        values = np.asarray(values, np.float64)
        if how is Drawn.WHOLE or self.last is None:
            self.last = values.copy()
        elif how is Drawn.EYES:
            self.last = _held(self.last, values)


def _held(last: np.ndarray, values: np.ndarray) -> np.ndarray:
    """An eyes-only frame's values: ``values``' eyes over the rest of the frame drawn before (``last``)."""
    held = last.copy()
    held[_EYE_CHANNELS] = values[_EYE_CHANNELS]
    return held


class ReusingRenderer:
    """A ``WarpRenderer``'s frames, each drawn only as far as it differs visibly from the last one drawn
    (live sessions). Not thread-safe."""

    def __init__(self, renderer: WarpRenderer) -> None:
        self.renderer = renderer
        self.gains = _head_gains(renderer)
        self._still = StillFrames(self.gains, renderer.eye_w)
        self._last: _Last | None = None
        iod = renderer.rig.iod
        self._pad = int(np.ceil(_EYE_PAD_IOD * iod)) + 4
        self._lips = np.array(T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER)
        self._lip_pad = 4.0  # pixels: the mouth is painted within its lips' outline

    @property
    def last_values(self) -> np.ndarray | None:
        """The channel values the last frame drawn shows (for an eyes-only frame, not the values asked)."""
        return None if self._last is None else self._last.values

    def render(self, values: np.ndarray, max_px: float = REUSE_PX) -> tuple[np.ndarray, Drawn]:
        """An RGB frame (the renderer's own array: do not modify it) for ``values`` and how it was made.

        ``REUSED``: no point of the face would move more than ``max_px`` since the last frame drawn.
        ``EYES``: only the eyes moved farther (the rest stayed within ``max_px``): the last frame with the
        eyes' box drawn for the eyes' new channels. Otherwise the whole frame is drawn.
        """
        r = self.renderer
        values = np.asarray(values, np.float64)
        last = self._last
        if last is not None and self._still.still(values, max_px):
            return last.frame, Drawn.REUSED
        v3 = r.pose.deform(values)
        if last is not None:
            if _move(v3, last.verts) + self._gaze_px(values, last.values) < max_px:
                return last.frame, Drawn.REUSED
            held = _held(last.values, values)
            if not np.array_equal(held, last.values):
                hv3 = r.pose.deform(held)
                if _move(v3, hv3) < max_px:
                    frame = self._draw_eyes(held, hv3, last)
                    if frame is not None:
                        self._last = _Last(held, hv3, frame)
                        self._still.last = held
                        return frame, Drawn.EYES
        frame = r.draw(values, v3)
        self._last = _Last(values.copy(), v3, frame)
        self._still.last = self._last.values
        return frame, Drawn.WHOLE

    def forget(self) -> None:
        """The frame shown last is not this renderer's: the next one is drawn whole."""
        self._last = None
        self._still.last = None

    def _gaze_px(self, a: np.ndarray, b: np.ndarray) -> float:
        """How far the irises move between values ``a`` and ``b`` (pixels)."""
        return max(abs(a[c] - b[c]) * g for c, g in zip(_GAZE, GAZE_PX)) * self.renderer.eye_w

    def _draw_eyes(self, held: np.ndarray, hv3: np.ndarray, last: _Last) -> np.ndarray | None:
        """The last frame with the eyes' box drawn anew for ``held`` (mesh ``hv3``); None where the box
        would reach the mouth or the lids were painted outside it (the frame is then drawn whole)."""
        r = self.renderer
        h, w = last.frame.shape[:2]
        changed = np.abs(hv3[:, :2] - last.verts[:, :2]).max(axis=1) > _CHANGED_PX
        ids = np.concatenate([_EYE_REGION["right"], _EYE_REGION["left"], np.flatnonzero(changed)])
        pts = np.concatenate([hv3[ids, :2], last.verts[ids, :2]])
        x0, y0 = np.floor(pts.min(axis=0)).astype(int) - self._pad
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + self._pad + 1
        box = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
        lips = hv3[self._lips, :2]
        lx0, ly0 = lips.min(axis=0) - self._lip_pad
        lx1, ly1 = lips.max(axis=0) + self._lip_pad
        if box[0] >= box[2] or box[1] >= box[3] or (lx0 < box[2] and box[0] < lx1 and ly0 < box[3] and box[1] < ly1):
            return None
        m = _MAP_MARGIN_PX
        clip = (max(0, box[0] - m), max(0, box[1] - m), min(w, box[2] + m), min(h, box[3] + m))
        out = r.draw(held, hv3, clip=clip, base=last.frame)
        if r.eyes is not None and not all(_inside(p, box) for p in r.eyes.painted):
            return None
        # only the box is kept: around it the map was clamped (and the map's grid reaches a cell past the clip)
        x0, y0, x1, y1 = box
        frame = last.frame.copy()
        frame[y0:y1, x0:x1] = out[y0:y1, x0:x1]
        return frame


def _move(a: np.ndarray, b: np.ndarray) -> float:
    """The farthest any vertex moves between meshes ``a`` and ``b`` (pixels, in the picture)."""
    return float(np.abs(a[:, :2] - b[:, :2]).max())


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _head_gains(r: WarpRenderer, step_deg: float = 0.25, poses_deg: float = 5.0) -> np.ndarray:
    """(Nv, 3): per vertex and head-rotation channel, how far the vertex moves per degree (pixels), the most
    found at the neutral pose and at ``poses_deg`` either way on each axis, times a safety margin."""
    bases = [np.zeros(len(CHANNELS))]
    for c in _HEAD:
        for sign in (-1.0, 1.0):
            b = np.zeros(len(CHANNELS))
            b[c] = sign * poses_deg
            bases.append(b)
    gains = np.zeros((len(r.v0), len(_HEAD)))
    for base in bases:
        v0 = r.pose.deform(base)[:, :2]
        for j, c in enumerate(_HEAD):
            b = base.copy()
            b[c] += step_deg
            step = np.linalg.norm(r.pose.deform(b)[:, :2] - v0, axis=1) / step_deg
            gains[:, j] = np.maximum(gains[:, j], step)
    return gains * _GAIN_SAFETY


__all__ = ["LISTEN_REUSE_PX", "REUSE_PX", "Drawn", "ReusingRenderer", "StillFrames", "reuse_px"]
