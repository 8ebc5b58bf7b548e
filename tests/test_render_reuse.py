"""Live frames drawn only as far as they need (``render.reuse``): still frames are the last one again,
a blink or a glance draws only the eyes, and every frame stays the picture an exact render gives."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import media, psnr

from motion.generator import MotionStream
from motion.types import CHANNEL_INDEX
from render import topology as T
from render.reuse import LISTEN_REUSE_PX, REUSE_PX, Drawn, ReusingRenderer, StillFrames
from render.warp import WarpRenderer
from talker.pipeline import Pipeline
from talker.sheet import pose_values
from talker.stages import SILENCE, Phone, Speech


@pytest.fixture(scope="module")
def astronaut(pipeline: Pipeline):
    return pipeline.prepare_avatar(media("faces", "astronaut_eileen_collins.png"), (512, 512))


def idle_values(seconds: int, seed: int = 3) -> np.ndarray:
    stream = MotionStream(25.0, seed=seed)
    sr = 16000
    silence = Speech(np.zeros(sr, np.float32), sr, (Phone(0.0, 1.0, SILENCE),))
    return np.concatenate([stream.push(silence) for _ in range(seconds)])


@pytest.mark.parametrize("max_px, least_psnr", [(REUSE_PX, 44.0), (LISTEN_REUSE_PX, 40.0)])
def test_idle_frames_are_drawn_only_when_something_moved_visibly(astronaut, max_px: float, least_psnr: float) -> None:
    values = idle_values(8)
    fast, exact = ReusingRenderer(WarpRenderer(astronaut.rig)), WarpRenderer(astronaut.rig)
    # what a session's render worker tells from the values alone, without asking the renderer
    still = StillFrames(fast.gains, fast.renderer.eye_w)
    kinds = []
    told = 0
    worst = float("inf")
    for v in values:
        surely = still.still(v, max_px)
        frame, drawn = fast.render(v, max_px)
        assert drawn is Drawn.REUSED or not surely, "a frame told still from its values is reused"
        still.drawn(v, drawn)
        told += surely
        kinds.append(drawn)
        worst = min(worst, psnr(frame, exact.render(v)))
    assert kinds.count(Drawn.REUSED) > 0.3 * len(values)  # most idle frames move less than the threshold
    assert told > 0.5 * kinds.count(Drawn.REUSED), "most of them are told from their values"
    assert Drawn.EYES in kinds  # blinks and glances draw only the eyes
    assert worst >= least_psnr  # and every frame is still the right picture
    # a real movement is drawn at once, whole
    jaw = pose_values({"jawOpen": 0.5})
    frame, drawn = fast.render(jaw, max_px)
    assert drawn is Drawn.WHOLE and psnr(frame, exact.render(jaw)) == float("inf")


def test_a_blink_draws_the_eyes_over_the_last_frame_and_nothing_else(astronaut) -> None:
    rig = astronaut.rig
    fast, exact = ReusingRenderer(WarpRenderer(rig)), WarpRenderer(rig)
    still = pose_values({"headYaw": 2.0, "headPitch": -1.0})
    first, drawn = fast.render(still)
    assert drawn is Drawn.WHOLE
    first = first.copy()
    blink = still.copy()
    blink[CHANNEL_INDEX["eyeBlinkLeft"]] = blink[CHANNEL_INDEX["eyeBlinkRight"]] = 0.8
    blink[CHANNEL_INDEX["headYaw"]] += 0.02  # the head drifts a little meanwhile
    frame, drawn = fast.render(blink)
    assert drawn is Drawn.EYES
    held = fast.last_values
    assert held is not None and held[CHANNEL_INDEX["headYaw"]] == 2.0, "the head stays where it was drawn"
    assert psnr(frame, exact.render(held)) >= 50.0  # the picture an exact render of it gives
    changed = np.argwhere(np.abs(frame.astype(int) - first).max(axis=2) > 0)
    points = exact.target_points(held)
    eyes, lips = points[[33, 133, 263, 362]], points[T.LIP_OUTER_UPPER]
    assert len(changed) > 0.05 * rig.iod**2, "the lids shut"
    (y0, x0), (y1, x1) = changed.min(axis=0), changed.max(axis=0)
    assert eyes[:, 0].min() - rig.iod < x0 and x1 < eyes[:, 0].max() + rig.iod, "only around the eyes"
    assert eyes[:, 1].min() - rig.iod < y0 and y1 < lips[:, 1].min(), "the mouth is not touched"
