"""Head turns: a portrait turns as far as its picture allows, and a speaking head keeps its eyes on the viewer."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import media

from audio.types import Phone, Speech
from motion.generator import MotionGenerator, MotionStyle
from motion.types import CHANNEL_INDEX
from render.deform import TURN_MAX_DEG, RigPose
from talker.pipeline import Pipeline
from talker.sheet import pose_values


def _nose_shift(pose: RigPose, yaw: float) -> float:
    """How far (IOD) the drawn nose tip moves across the face for a ``headYaw`` of ``yaw`` degrees."""

    def offset(v: np.ndarray) -> float:
        eyes = (v[[33, 133], 0].mean() + v[[362, 263], 0].mean()) / 2
        return float(v[1, 0] - eyes) / pose.rig.iod

    return offset(pose.deform(pose_values({"headYaw": yaw}))) - offset(pose.deform(pose_values({})))


@pytest.fixture(scope="module")
def poses(pipeline: Pipeline) -> dict[str, RigPose]:
    faces = {"frontal": "obama.jpg", "three-quarter": "liveportrait_s9_mona_lisa.jpg"}
    return {k: RigPose(pipeline.prepare_avatar(media("faces", f), (512, 512)).rig) for k, f in faces.items()}


def test_a_frontal_portrait_turns_either_way_and_never_past_its_room(poses: dict[str, RigPose]) -> None:
    pose = poses["frontal"]
    assert abs(pose.rest_yaw) < 5
    for sign in (1.0, -1.0):
        shifts = [abs(_nose_shift(pose, sign * a)) for a in (4, 8, 12, 16, 22, 30, 90)]
        assert all(b > a for a, b in zip(shifts, shifts[1:])), "a larger turn asked is a larger turn drawn"
        # small turns are drawn as asked: the shift grows in proportion to the angle, nearly so to 16 degrees
        assert shifts[1] == pytest.approx(2 * shifts[0], rel=0.1)
        assert shifts[3] > 0.85 * 4 * shifts[0]
        # asked for 90 degrees, the head turns no further than TURN_MAX_DEG would take it
        assert shifts[-1] < shifts[3] * TURN_MAX_DEG / 16


def test_a_three_quarter_portrait_turns_less_than_a_frontal_one(poses: dict[str, RigPose]) -> None:
    turned, frontal = poses["three-quarter"], poses["frontal"]
    assert abs(turned.rest_yaw) > 10, "the Mona Lisa faces to one side"
    for sign in (1.0, -1.0):
        # asked to turn 30 degrees, she moves no further than the frontal face does at 12: her hidden cheek
        # is never stretched into a fold, nor her face drawn near profile
        assert abs(_nose_shift(turned, sign * 30)) < abs(_nose_shift(frontal, sign * 12))
        # and a small turn is still drawn
        assert abs(_nose_shift(turned, sign * 2)) > 0.02


def _speech(seconds: float = 8.0) -> Speech:
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    tone = (0.2 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    vowels = ["AA", "IY", "EH", "OW", "AE", "UW"]
    phones = tuple(
        Phone(0.25 * k, 0.25 * (k + 1), vowels[k % len(vowels)], 1 if k % 3 == 0 else 0)
        for k in range(int(seconds / 0.25))
    )
    return Speech(tone, sr, phones)


def test_a_speaking_head_turns_and_its_eyes_stay_on_the_viewer() -> None:
    speech = _speech()
    for seed in (0, 1, 2):
        # without the eyes' own glances, to see what they do as the head turns
        track = MotionGenerator(25.0, seed, MotionStyle(gaze_amplitude=0.0)).generate(speech)
        yaw = track.values[:, CHANNEL_INDEX["headYaw"]]
        look = track.values[:, CHANNEL_INDEX["eyeLookX"]]
        assert yaw.std() > 3.0, "a speaking head turns by several degrees"
        # the eyes turn back against the head (eyeLookX 1 turns them about 24 degrees the head's way): where
        # they point moves less than the head does
        gaze_deg = yaw + 24.0 * look
        assert gaze_deg.std() < 0.7 * yaw.std()
