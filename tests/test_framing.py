"""Portrait framing: head and shoulders at one scale and eye height from any picture, or the whole picture."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA

from talker.pipeline import Pipeline
from talker.portrait import _eye_line, frame_portrait, load_image

FACES = sorted((DATA / "faces").glob("*"))


@pytest.fixture(scope="module")
def found(pipeline: Pipeline) -> list[tuple[np.ndarray, object]]:
    out = []
    for f in FACES:
        rgb = load_image(f)
        out.append((rgb, pipeline.detector.detect(rgb)[0]))
    return out


def _eye_share(framed) -> float:
    return _eye_line(framed.face) / framed.image.shape[0]


def _face_share(framed) -> float:
    x0, y0, x1, y1 = framed.face.bbox
    return (y1 - y0) / framed.image.shape[0]


def test_bust_puts_every_face_at_one_eye_height_and_scale(found) -> None:
    """Portraits cut close above the head (a press photo) and loose ones (a half-body painting) come out
    alike: the eyes at the same height, the face a similar share of the frame."""
    framed = [frame_portrait(rgb, face, (512, 512), "bust") for rgb, face in found]
    eyes = [_eye_share(f) for f in framed]
    shares = [_face_share(f) for f in framed]
    assert max(eyes) - min(eyes) < 0.1, eyes
    assert all(0.3 <= s <= 0.55 for s in shares), shares
    assert all(f.image.shape == (512, 512, 3) for f in framed)


def test_head_is_closer_than_bust(found) -> None:
    for rgb, face in found:
        bust = frame_portrait(rgb, face, (512, 512), "bust")
        head = frame_portrait(rgb, face, (512, 512), "head")
        assert _face_share(head) > 1.1 * _face_share(bust)


def test_source_keeps_the_whole_picture_inside_the_size(found) -> None:
    rgb, face = found[0]
    h, w = rgb.shape[:2]
    framed = frame_portrait(rgb, face, (512, 512), "source")
    oh, ow = framed.image.shape[:2]
    assert max(ow, oh) <= 512 and ow % 2 == 0 and oh % 2 == 0
    assert abs(ow / oh - w / h) < 0.02
    # the landmarks follow the picture: the face's box keeps its place as a share of the frame
    x0, y0, x1, y1 = face.bbox
    fx0, fy0, fx1, fy1 = framed.face.bbox
    assert abs(fx0 / ow - x0 / w) < 0.01 and abs(fy1 / oh - y1 / h) < 0.01


def test_unknown_framing_is_refused_by_name(found) -> None:
    rgb, face = found[0]
    with pytest.raises(ValueError, match="framing 'torso' is not one of bust, head, source"):
        frame_portrait(rgb, face, (512, 512), "torso")


def test_cli_source_framing_keeps_the_pictures_shape(tmp_path) -> None:
    """`talker render --framing source` shows the whole two-person picture, in its own aspect ratio."""
    import subprocess
    import sys

    import av

    face = DATA / "faces" / "obama_biden_two_people.jpg"
    h, w = load_image(face).shape[:2]
    out = tmp_path / "whole.mp4"
    r = subprocess.run(
        [sys.executable, "-m", "talker.cli", "render", "--text", "Hi.", "--voice", "espeak:en-us", "--quiet",
         "--face", str(face), "--size", "320", "--framing", "source", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        ow, oh = cc.width, cc.height
    assert max(ow, oh) == 320 and abs(ow / oh - w / h) < 0.02
    bad = subprocess.run(
        [sys.executable, "-m", "talker.cli", "render", "--text", "Hi.", "--framing", "torso", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "--framing" in bad.stderr and "torso" in bad.stderr


def test_the_server_frames_session_and_job_portraits_by_its_setting(pipeline: Pipeline) -> None:
    from server.engine import DEFAULT_PORTRAIT, Engine
    from server.settings import Settings

    assert Settings(framing="head").framing == "head"
    with pytest.raises(ValueError, match="framing"):
        Settings(framing="torso")
    bust = Engine(detector=pipeline.detector).avatar(None, DEFAULT_PORTRAIT, (256, 256))
    head = Engine(detector=pipeline.detector, framing="head").avatar(None, DEFAULT_PORTRAIT, (256, 256))
    assert head.rig.iod > 1.2 * bust.rig.iod
    assert head.size == bust.size == (256, 256)
