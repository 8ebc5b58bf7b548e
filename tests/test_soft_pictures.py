"""A soft picture (a small photo scaled up, a blurred scan) gets drawn parts as soft as itself: the
opening mouth's edge and interior do not look cut out and pasted on."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import media

from render.geometry import picture_blur
from render.mouth import MouthPainter
from render.warp import WarpRenderer
from talker.pipeline import Pipeline
from talker.sheet import pose_values


def upscaled(path: str, factor: int) -> np.ndarray:
    from talker.portrait import load_image

    img = load_image(path)
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def test_the_blur_of_a_picture_is_read_from_its_edges() -> None:
    from talker.portrait import load_image

    img = load_image(media("faces", "astronaut_eileen_collins.png"))
    box = (150, 60, 370, 300)  # the face
    sharp = picture_blur(img, box)
    assert sharp < 0.75
    readings = [picture_blur(cv2.GaussianBlur(img, (0, 0), s), box) for s in (1.0, 2.0, 3.0)]
    assert readings[0] < readings[1] < readings[2]
    assert abs(readings[1] - 2.0) < 0.6
    assert picture_blur(upscaled(media("faces", "astronaut_eileen_collins.png"), 4), box) > 1.2
    assert picture_blur(np.full((64, 64, 3), 128, np.uint8), (0, 0, 64, 64)) == 0.0


def opening_steepness(frame: np.ndarray, rest: np.ndarray) -> float:
    """The steepest luma edge where the frame differs from the rest pose (the drawn opening)."""
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    changed = cv2.dilate((np.abs(frame.astype(int) - rest.astype(int)).max(axis=2) > 12).astype(np.uint8), None)
    mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    return float(np.percentile(mag[changed > 0], 99))


def test_a_soft_portraits_open_mouth_is_as_soft_as_the_picture(pipeline: Pipeline) -> None:
    av = pipeline.prepare_avatar(upscaled(media("faces", "astronaut_eileen_collins.png"), 4), (512, 512))
    r = WarpRenderer(av.rig)
    assert r.mouth.soft > 1.0
    rest = r.render(pose_values({}))
    frame = r.render(pose_values({"jawOpen": 0.6}))
    soft = opening_steepness(frame, rest)
    # the same opening drawn with the crisp edge a sharp picture gets
    crisp_painter = MouthPainter(av.rig)
    crisp_painter.soft = 0.0
    r.mouth = crisp_painter
    crisp = opening_steepness(r.render(pose_values({"jawOpen": 0.6})), rest)
    lips = av.rig.verts[[61, 291, 0, 17], :2]
    x0, y0 = lips.min(axis=0).astype(int) - 20
    x1, y1 = lips.max(axis=0).astype(int) + 20
    g = cv2.cvtColor(rest, cv2.COLOR_RGB2GRAY).astype(np.float32)[y0:y1, x0:x1]
    own = float(np.percentile(np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)), 99))
    assert soft < 0.75 * crisp, (soft, crisp)
    assert soft < 2.0 * own, (soft, own)


def test_a_soft_portraits_shut_lids_and_lashes_are_as_soft_as_the_picture(pipeline: Pipeline) -> None:
    sharp = pipeline.prepare_avatar(media("faces", "astronaut_eileen_collins.png"), (512, 512))
    assert WarpRenderer(sharp.rig).eyes.soft == 0.0  # a sharp photograph's lids are drawn as before
    av = pipeline.prepare_avatar(upscaled(media("faces", "astronaut_eileen_collins.png"), 4), (512, 512))
    r = WarpRenderer(av.rig)
    assert r.eyes is not None and r.eyes.soft > 1.0
    rest = r.render(pose_values({}))
    shut = pose_values({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})
    soft = opening_steepness(r.render(shut), rest)
    r.eyes.soft = 0.0
    crisp = opening_steepness(r.render(shut), rest)
    assert soft < 0.8 * crisp, (soft, crisp)
