"""What a viewer sees in a portrait's open mouth and shut lids: a rounded vowel's opening, the cavity's
tone, the drawn lower teeth, the shut lid's skin."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import media

from render import topology as T
from render.mouth import MouthPainter
from render.warp import WarpRenderer
from talker.pipeline import Pipeline
from talker.sheet import pose_values

_OO = {"jawOpen": 0.22, "mouthFunnel": 0.4, "mouthPucker": 0.9}  # the "ou" viseme
_AA = {"jawOpen": 0.66, "mouthStretch": 0.1}  # the "aa" viseme
_LUMA = np.array([0.299, 0.587, 0.114])


def _avatar(pipeline: Pipeline, name: str):
    return pipeline.prepare_avatar(media("faces", name), (512, 512))


def _cover(rig, vt: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """How much of each pixel the mouth's interior covers (painted over black and over white)."""
    painter, canvases = MouthPainter(rig), []
    for level in (0, 255):
        out = np.full_like(rig.image, level)
        painter.paint(out, vt, pose)
        canvases.append(out.astype(np.float64).mean(axis=2))
    return 1.0 - (canvases[1] - canvases[0]) / 255.0


@pytest.mark.parametrize("name", ["liveportrait_s12_einstein.jpg", "liveportrait_s9_mona_lisa.jpg"])
def test_a_rounded_vowel_shows_a_small_round_dark_opening(name: str, pipeline: Pipeline) -> None:
    # "oo": the pushed-forward lips meet beside a small opening in the middle, dark inside; a slit from
    # corner to corner with a strip of teeth in it reads as a smile, not as a rounded vowel
    rig = _avatar(pipeline, name).rig
    r = WarpRenderer(rig)
    pose = pose_values(_OO)
    vt = r.target_points(pose)
    inside = _cover(rig, vt, pose) > 0.5
    ys, xs = np.nonzero(inside)
    width, height = np.ptp(xs) + 1, np.ptp(ys) + 1
    assert width / height < 2.6, (width, height)  # round, not a slit
    cheek = float(np.median(rig.image[int(vt[205, 1]), int(vt[205, 0]) - 3 : int(vt[205, 0]) + 4] @ _LUMA))
    lum = r.render(pose).astype(np.float64) @ _LUMA
    assert (lum[inside] < 0.5 * cheek).sum() > 0.015 * rig.iod**2  # and dark inside, not a wall of teeth


@pytest.mark.parametrize("name", ["obama.jpg", "astronaut_eileen_collins.png"])
def test_a_rounded_vowel_covers_a_portraits_own_teeth_with_the_lips(name: str, pipeline: Pipeline) -> None:
    # a smiling portrait's own teeth would fill the whole "oo" opening: the lips pushed forward cover their
    # lower part, and the opening below their edges is dark
    rig = _avatar(pipeline, name).rig
    r = WarpRenderer(rig)
    pose = pose_values(_OO)
    vt = r.target_points(pose)
    inside = _cover(rig, vt, pose) > 0.5
    cheek = float(np.median(rig.image[int(vt[205, 1]), int(vt[205, 0]) - 3 : int(vt[205, 0]) + 4] @ _LUMA))
    lum = r.render(pose).astype(np.float64) @ _LUMA
    assert (lum[inside] < 0.5 * cheek).sum() > 0.015 * rig.iod**2


@pytest.mark.parametrize("name", ["obama.jpg", "astronaut_eileen_collins.png", "liveportrait_s12_einstein.jpg"])
def test_a_wide_open_mouth_has_no_black_in_its_corners(name: str, pipeline: Pipeline) -> None:
    # the cavity is dark red-brown, lit from the lips inward; the portrait's own black at a smile's
    # corners, moved into a wider opening, would show as black crescents beside the teeth
    rig = _avatar(pipeline, name).rig
    r = WarpRenderer(rig)
    pose = pose_values(_AA)
    vt = r.target_points(pose)
    inside = _cover(rig, vt, pose) > 0.9
    lum = r.render(pose).astype(np.float64) @ _LUMA
    yy, xx = np.mgrid[: lum.shape[0], : lum.shape[1]]
    xa, xb = sorted((vt[78, 0], vt[308, 0]))
    sides = (xx < xa + 0.3 * (xb - xa)) | (xx > xb - 0.3 * (xb - xa))
    upper = yy < 0.5 * (vt[13, 1] + vt[14, 1])
    lip = float(rig.lip_rgb @ _LUMA)
    assert lum[inside & sides & upper].min() > 0.15 * lip
    assert np.percentile(lum[inside], 5) < 0.5 * lip  # still a dark mouth


def test_drawn_lower_teeth_are_separate_teeth_lit_at_their_edges(pipeline: Pipeline) -> None:
    # along the lower row: narrower teeth than the upper ones, each with a dark notch beside it, and
    # their edges lighter than their bases in the lower lip's shade (a flat grey band reads as no teeth)
    rig = _avatar(pipeline, "liveportrait_s12_einstein.jpg").rig
    r = WarpRenderer(rig)
    pose = pose_values(_AA)
    vt = r.target_points(pose)
    img = r.render(pose).astype(np.float64) @ _LUMA
    x_mid = int(round(vt[14, 0]))
    half = int(0.12 * rig.iod)
    lo_teeth = img[int(vt[14, 1]) - int(0.04 * rig.iod), x_mid - half : x_mid + half]
    up_teeth = img[int(vt[13, 1]) + int(0.06 * rig.iod), x_mid - half : x_mid + half]

    def dips(row: np.ndarray) -> int:  # local minima at least 8 levels below both neighbours' peaks
        k = 0
        for i in range(1, len(row) - 1):
            if row[i] < row[i - 1] and row[i] <= row[i + 1]:
                left, right = row[max(0, i - 3) : i].max(), row[i + 1 : i + 4].max()
                k += int(min(left, right) - row[i] >= 8)
        return k

    assert dips(lo_teeth) > dips(up_teeth) >= 2
    # (through the middle of a central lower incisor: they meet at the midline)
    x = int(round(vt[14, 0] + 0.5 * 0.72 * 0.13 * (vt[308, 0] - vt[78, 0])))
    col = img[int(vt[14, 1]) - int(0.06 * rig.iod) : int(vt[14, 1]) + 1, x]
    top = int(np.argmax(col))
    assert col[top] - col[top:].min() > 10, col  # lit at the edge, shaded towards the lip


@pytest.mark.parametrize("name", ["liveportrait_s9_mona_lisa.jpg", "astronaut_eileen_collins.png"])
def test_a_shut_lid_is_as_textured_as_the_skin_around_it(name: str, pipeline: Pipeline) -> None:
    # a shut lid is the person's own skin: its fine texture as strong as the cheek's, not a smooth patch
    rig = _avatar(pipeline, name).rig
    r = WarpRenderer(rig)
    pose = pose_values({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})
    vt, v0 = r.target_points(pose), rig.verts[:, :2]
    sigma = max(0.8, 0.012 * rig.iod)

    def detail(img: np.ndarray) -> np.ndarray:
        lum = img.astype(np.float32) @ _LUMA.astype(np.float32)
        return lum - cv2.GaussianBlur(lum, (0, 0), sigma)

    shut, portrait = detail(r.render(pose)), detail(rig.image)
    ratios = []
    for up, cheek_pt in ((T.R_EYE_UPPER, 50), (T.L_EYE_UPPER, 280)):
        xs = v0[up][:, 0]
        x0, x1 = int(xs.min() + 0.25 * np.ptp(xs)), int(xs.max() - 0.25 * np.ptp(xs))
        lid = shut[int(v0[up][:, 1].min()) : int(vt[up][:, 1].min()) - 2, x0:x1]
        cx, cy = np.round(v0[cheek_pt]).astype(int)
        c = int(0.04 * rig.iod)
        ratios.append(float(lid.std()) / float(portrait[cy - c : cy + c, cx - c : cx + c].std()))
    assert 0.68 < np.mean(ratios) < 1.6, ratios


def _shut(pipeline: Pipeline, name: str):
    """(rig, the shut frame's luminance, the shut lids' points) of a portrait blinking with both eyes."""
    rig = _avatar(pipeline, name).rig
    r = WarpRenderer(rig)
    pose = pose_values({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})
    return rig, r.render(pose).astype(np.float64) @ _LUMA, r.target_points(pose)


def _middle_columns(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The columns of the middle 30 % of an eye and the y of the lid line ``pts`` in each."""
    o = np.argsort(pts[:, 0])
    xs, ys = pts[o, 0], pts[o, 1]
    cols = np.arange(int(np.ceil(xs.min() + 0.35 * np.ptp(xs))), int(xs.max() - 0.35 * np.ptp(xs)) + 1)
    return cols, np.interp(cols, xs, ys)


@pytest.mark.parametrize("name", ["astronaut_eileen_collins.png", "liveportrait_s12_einstein.jpg"])
def test_a_shut_lids_lash_line_is_dark_at_the_margin_and_thins_below_it(name: str, pipeline: Pipeline) -> None:
    # on a filmed shut eye the lashes are darkest along the lid's margin and hang apart below it; a line
    # as dark at its lower edge as at the margin reads as a bar drawn across the eye
    rig, lum, vt = _shut(pipeline, name)
    offsets = np.arange(-0.04, 0.08, 0.005)  # below the shut lid's edge, in eye distances
    for up in (T.R_EYE_UPPER, T.L_EYE_UPPER):
        cols, edge = _middle_columns(vt[up])
        profile = np.array(
            [np.median([lum[int(round(y + d * rig.iod)), x] for x, y in zip(cols, edge)]) for d in offsets]
        )
        dark = np.median(profile[offsets < -0.02]) - profile  # below the lid skin just above the line
        k = int(np.argmax(dark))
        assert dark[k] > 30  # a line a viewer (and dlib) reads as a shut eye's lashes
        assert abs(offsets[k]) <= 0.015  # darkest at the lid's margin
        assert dark[np.searchsorted(offsets, 0.03)] < 0.65 * dark[k], dark.round()  # thinner below it
