"""Animate anything: five user points turn cartoons, animals and drawings into talking videos."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from conftest import DATA, ROOT, media

from motion.types import CHANNEL_INDEX, CHANNELS
from render.landmarks import MediaPipeFaceMesh
from render.warp import WarpRenderer
from talker.pipeline import Pipeline, RenderSettings
from talker.points import (
    PointsError,
    avatar_for,
    avatar_from_points,
    check_points,
    face_from_points,
    format_points,
    load_annotations,
    parse_points,
)
from talker.portrait import load_image

ANNOTATIONS = ROOT / "tests" / "data" / "nonhuman_points.json"
SIZE = (128, 128)


@pytest.fixture(scope="module")
def detector():
    return MediaPipeFaceMesh()


@pytest.fixture(scope="module")
def speech():
    return Pipeline().synthesize("Hello! I can talk.")


def test_parse_and_format_round_trip():
    p = parse_points(" 170,115; 320,137 ;263.5,248;232,280;292,283; ")
    assert p.shape == (5, 2) and p[2, 0] == 263.5
    assert format_points(p) == "170,115;320,137;263.5,248;232,280;292,283"
    assert np.array_equal(parse_points(format_points(p)), p)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("1,2;3,4", "expected 5"),
        ("170,115;320,137;263,248;232,280;292", "point 5 .* is not x,y"),
        ("170,115;320,abc;263,248;232,280;292,283", "point 2 .* not two numbers"),
        ("170,115;320,nan;263,248;232,280;292,283", "out of range"),
        ("320,137;170,115;263,248;232,280;292,283", "swap them"),  # eyes given left first
        ("170,115;320,137;263,248;232,40;292,40", "mouth corners .* below the eyes"),
        ("170,115;320,137;263,300;232,280;292,283", "nose tip .* between"),
        ("170,115;172,115;263,248;232,280;292,283", "at least 4 px"),
    ],
)
def test_bad_points_are_named(text, message):
    with pytest.raises(PointsError, match=message):
        parse_points(text)


def test_fitted_mesh_has_closed_lips_and_goes_through_the_points():
    pts = np.array([[170, 115], [320, 137], [263, 248], [232, 280], [292, 283]], float)
    face = face_from_points(pts, (451, 300))
    assert face.points.shape == (478, 3)
    assert np.allclose(face.points[13, :2], face.points[14, :2])  # inner lips meet
    # eye centres and mouth corners land near the clicks (a similarity fit of five points)
    iod = np.linalg.norm(pts[1] - pts[0])
    assert np.linalg.norm(face.points[61, :2] - pts[3]) < 0.2 * iod
    assert np.linalg.norm(face.points[291, :2] - pts[4]) < 0.2 * iod


def test_annotations_cover_every_nonhuman_image():
    folder = media("nonhuman")
    ann = load_annotations(ANNOTATIONS)
    images = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.*") if p.suffix in (".png", ".jpg"))
    assert set(images) <= set(ann) and len(ann) == 11  # the repository's copies lack the test-only cartoon
    for pts in ann.values():
        check_points(pts)


def test_mediapipe_misses_most_nonhuman_images(detector):
    """mediapipe finds a face in the 3D cartoon only (1 of 11; the cartoon is in the larger media set only)."""
    folder = media("nonhuman")
    names = [name for name in load_annotations(ANNOTATIONS) if (folder / name).exists()]
    found = {name: len(detector.detect(load_image(folder / name))) for name in names}
    assert found.pop("liveportrait_s7_3d_cartoon_boy.jpg", 1) == 1
    assert len(found) >= 10 and not any(found.values())


def test_no_face_error_suggests_points(detector):
    with pytest.raises(ValueError, match="--points"):
        avatar_for(media("nonhuman", "chelsea_cat.png"), None, detector, SIZE)


def _mouth_motion(avatar) -> float:
    """Largest pixel change in the mouth box between rest and an open jaw."""
    rig = avatar.rig
    r = WarpRenderer(rig)
    rest = np.zeros(len(CHANNELS), np.float32)
    open_ = rest.copy()
    open_[CHANNEL_INDEX["jawOpen"]] = 0.6
    a, b = r.render(rest).astype(int), r.render(open_).astype(int)
    assert np.array_equal(a, rig.image.astype(int)) or np.abs(a - rig.image).mean() < 2  # rest = the picture
    return float(np.abs(a - b).mean())


def _nonhuman_images() -> list[object]:
    """The annotated images; those kept only in the larger media set (test-only licences) run as slow checks."""
    names = sorted(load_annotations(ANNOTATIONS))
    return [n if (DATA / "nonhuman" / n).exists() else pytest.param(n, marks=pytest.mark.slow) for n in names]


@pytest.mark.parametrize("name", _nonhuman_images())
def test_every_nonhuman_image_talks_with_points(name, speech, tmp_path: Path):
    image = media("nonhuman", name)
    points = load_annotations(ANNOTATIONS)[name]
    avatar = avatar_from_points(image, points, SIZE)
    assert avatar.size == SIZE
    assert _mouth_motion(avatar) > 0.5  # the mouth opens
    out = tmp_path / "clip.mp4"
    result = Pipeline().render_mp4(avatar, speech, out, RenderSettings(size=SIZE))
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == SIZE
        assert c.streams.audio, "the clip has its speech"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == result.n_frames >= 25
    # the video is not a still: frames differ while speaking
    assert max(np.abs(f.astype(int) - frames[0].astype(int)).mean() for f in frames) > 0.3


def test_render_takes_guide_points_and_says_so_when_it_needs_them(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from talker.cli import main

    cat = str(media("nonhuman/chelsea_cat.png"))
    out = tmp_path / "cat.mp4"
    assert main(["render", "--text", "Meow.", "--face", cat, "--size", "128", "--out", str(out), "--quiet"]) == 2
    err = capfd.readouterr().err
    assert "no face found" in err and "--points" in err
    points = "170,115;320,137;263,248;232,280;292,283"
    args = ["render", "--text", "Meow.", "--face", cat, "--points", points, "--size", "128", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert out.stat().st_size > 1000
