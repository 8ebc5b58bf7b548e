"""The encoder round trip's inputs: poses held one at a time, and a video frame as the portrait."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import write_video

from benchmarks.roundtrip_encoder import HELD, _portrait, held_track
from motion.types import CHANNEL_INDEX as C


def test_each_held_pose_is_read_where_it_is_held_alone() -> None:
    """Each pose's reading frames show that pose at its full value and nothing else moving; the track
    starts and ends at rest, so the encoder's neutral is the rest pose."""
    rows, spans = held_track()
    assert len(spans) == len(HELD)
    assert not rows[:25].any() and not rows[-5:].any()
    for (name, value), span in zip(HELD, spans):
        held = rows[span]
        assert len(held) >= 10
        assert np.allclose(held[:, C[name]], value)
        others = np.delete(held, C[name], axis=1)
        assert not others.any(), name
    # the rest is the median of every channel, as the encoder takes it
    assert not np.median(rows, axis=0).any()


def test_a_video_gives_its_frame_as_the_portrait(tmp_path: Path) -> None:
    frames = [np.full((64, 64, 3), level, np.uint8) for level in (20, 70, 120, 170, 220)]
    path = write_video(tmp_path / "clip.mp4", frames, marks=False)
    got = _portrait(str(path), 3)
    assert isinstance(got, np.ndarray) and got.shape == (64, 64, 3)
    assert abs(float(got.mean()) - 170) < 8
    assert _portrait("portrait.jpg", 3) == "portrait.jpg"
