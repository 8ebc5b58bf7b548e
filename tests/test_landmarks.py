"""Landmark backends: mediapipe (default), dlib 68, face-alignment FAN from a local folder, and the
canonical-mesh fit that lets any of them (or five clicked points) drive the warp rig."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import media

from render import topology as T
from render.canonical import IBUG68_TO_MP, fit_five, five_points
from render.landmarks import Dlib68, FaceAlignmentFAN, MediaPipeFaceMesh, NoFaceError, pick_face
from render.rig import build_rig
from render.warp import WarpRenderer
from talker.portrait import load_image
from talker.sheet import pose_values


@pytest.fixture(scope="module")
def two_people() -> np.ndarray:
    return load_image(media("faces", "obama_biden_two_people.jpg"))


def test_several_faces_largest_by_default_or_chosen(two_people: np.ndarray) -> None:
    faces = MediaPipeFaceMesh().detect(two_people)
    assert len(faces) == 2
    largest = pick_face(faces)
    assert largest.area == max(f.area for f in faces)
    left, right = pick_face(faces, 0), pick_face(faces, 1)
    assert left.bbox[0] < right.bbox[0]
    with pytest.raises(NoFaceError, match="face index 2 requested but .* has 2 face"):
        pick_face(faces, 2)


def test_a_small_face_in_a_wide_picture_is_found_where_it_is() -> None:
    # mediapipe alone sees a 1712x512 picture squeezed into a small square and finds no face in it
    import cv2

    img = load_image(media("faces", "astronaut_eileen_collins.png"))
    direct = MediaPipeFaceMesh().detect(img)
    wide = cv2.copyMakeBorder(img, 0, 0, 600, 600, cv2.BORDER_REPLICATE)
    faces = MediaPipeFaceMesh().detect(wide)
    assert len(faces) == 1  # found once, although several overlapping tiles contain it
    x0, y0, x1, y1 = faces[0].bbox
    d0, e0, d1, e1 = direct[0].bbox
    assert abs(x0 - 600 - d0) < 6 and abs(x1 - 600 - d1) < 6 and abs(y0 - e0) < 6 and abs(y1 - e1) < 6


def _iod(p: np.ndarray) -> float:
    a = p[T.R_EYE_UPPER + T.R_EYE_LOWER, :2].mean(axis=0)
    b = p[T.L_EYE_UPPER + T.L_EYE_LOWER, :2].mean(axis=0)
    return float(np.linalg.norm(a - b))


def test_canonical_fit_from_68_and_from_five_points() -> None:
    img = load_image(media("faces", "obama.jpg"))
    real = MediaPipeFaceMesh().detect(img)[0]
    p = real.points
    from render.canonical import fit_ibug68

    f68 = fit_ibug68(p[list(IBUG68_TO_MP)], real.image_size)
    f5 = fit_five(five_points(p)[:, :2], real.image_size)
    err68 = np.linalg.norm(f68.points[:468, :2] - p[:468, :2], axis=1).mean() / _iod(p)
    err5 = np.linalg.norm(f5.points[:468, :2] - p[:468, :2], axis=1).mean() / _iod(p)
    assert err68 < 0.05 and err5 < 0.12
    with pytest.raises(ValueError, match="expected 5 points"):
        fit_five(np.zeros((4, 2)), real.image_size)
    with pytest.raises(ValueError, match="less than 4 pixels apart"):
        fit_five(np.array([[10, 10], [11, 10], [10, 20], [5, 30], [15, 30]]), real.image_size)


def test_dlib_backend_drives_the_rig() -> None:
    img = load_image(media("faces", "obama.jpg"))
    face = pick_face(Dlib68().detect(img))
    assert face.points.shape == (68, 3)
    rig = build_rig(img, face)
    r = WarpRenderer(rig)
    still = r.render(pose_values({}))
    opened = r.render(pose_values({"jawOpen": 0.6}))
    y0, y1 = int(rig.verts[0, 1]), int(rig.verts[152, 1])
    x0, x1 = int(rig.verts[61, 0]), int(rig.verts[291, 0])
    assert np.abs(opened[y0:y1, x0:x1].astype(int) - still[y0:y1, x0:x1]).mean() > 5


def test_face_alignment_fan_loads_local_weights(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from face_alignment.models import FAN

    torch.manual_seed(0)
    net = FAN(1)  # a small FAN; real weights would be network_size 4
    model_dir = tmp_path / "fan"
    model_dir.mkdir()
    torch.save(net.state_dict(), model_dir / "fan.pth")
    (model_dir / "config.json").write_text(json.dumps({"network_size": 1}))
    det = FaceAlignmentFAN(model_dir)
    img = load_image(media("faces", "obama.jpg"))
    box = (100.0, 80.0, 300.0, 300.0)
    pts = det.landmarks_in_box(img, box)
    assert pts.shape == (68, 2)
    # every point decodes to a heatmap cell inside the (enlarged) crop around the box
    assert (pts[:, 0] > 0).all() and (pts[:, 0] < img.shape[1]).all()
    faces = det.detect(img)
    assert faces and faces[0].points.shape == (68, 3)
    with pytest.raises(FileNotFoundError, match="must contain fan.pth and config.json"):
        FaceAlignmentFAN(tmp_path / "empty")
