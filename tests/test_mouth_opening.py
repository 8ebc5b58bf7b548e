"""The mouth opening a landmark reader sees in a render is the lip gap the jaw channel asks for, on
portraits whose own mouths differ (a broad toothy smile, a narrower one), read as the motion encoder reads
filmed speakers (``render.encoder.measure``: inner-lip gap over the inter-ocular distance)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import media

from motion.types import CHANNEL_INDEX
from render.encoder import face_axes, measure
from render.rig import MAX_LIP_GAP_IOD
from render.warp import WarpRenderer
from talker.pipeline import Pipeline
from talker.sheet import pose_values


def _read_gap(pipeline: Pipeline, image: np.ndarray) -> float:
    """The inner-lip gap (IOD) the face mesh reads in ``image``."""
    pts = pipeline.detector.detect(image)[0].points.astype(np.float64)
    origin, axes, iod = face_axes(pts)
    return float(measure(((pts - origin) @ axes.T) / iod)[0])


@pytest.mark.parametrize("name", ["obama.jpg", "astronaut_eileen_collins.png"])
def test_speech_sized_jaw_values_read_back_as_the_gaps_they_ask_for(name: str, pipeline: Pipeline) -> None:
    # jawOpen 0.2-0.4 asks for 0.1-0.2 IOD (filmed speakers' typical openings). Read back above the closed
    # mouth, each is that within a fifth on either portrait: on Obama they read 1.3-1.5x, and his renders'
    # median opening lay above every filmed speaker's
    av = pipeline.prepare_avatar(media("faces", name), (512, 512))
    assert av.rig.mouth_open_source
    r = WarpRenderer(av.rig)
    shut = _read_gap(pipeline, r.render(pose_values({"jawOpen": 0.0})))
    for jaw in (0.2, 0.3, 0.4):
        opening = _read_gap(pipeline, r.render(pose_values({"jawOpen": jaw}))) - shut
        asked = MAX_LIP_GAP_IOD * jaw
        assert 0.8 * asked < opening < 1.2 * asked, (jaw, opening)


@pytest.mark.parametrize("name", ["obama.jpg", "astronaut_eileen_collins.png"])
def test_the_portraits_own_opening_reads_as_its_jaw_value(name: str, pipeline: Pipeline) -> None:
    # the rest pose (the portrait itself) has the jaw value whose gap is the one the reader sees there
    av = pipeline.prepare_avatar(media("faces", name), (512, 512))
    rest = WarpRenderer(av.rig).neutral_values()
    assert abs(MAX_LIP_GAP_IOD * rest[CHANNEL_INDEX["jawOpen"]] - _read_gap(pipeline, av.rig.image)) < 0.02
