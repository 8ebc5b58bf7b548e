"""Renderer checks: exact rest pose, lips that close on a smiling portrait, lids that close, and an
independent judge (dlib landmarks + face embeddings, not the mediapipe mesh that drives the warp)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import media, psnr

from render import topology as T
from render.geometry import similarity
from render.warp import WarpRenderer
from talker.pipeline import Pipeline
from talker.sheet import pose_values


@pytest.fixture(scope="module")
def astronaut(pipeline: Pipeline):
    # smiles with her teeth showing: the hard case for closing the lips
    return pipeline.prepare_avatar(media("faces", "astronaut_eileen_collins.png"), (512, 512))


def video_frame(name: str, k: int = 30) -> np.ndarray:
    """Frame ``k`` (RGB) of one of the talking-face videos in the media folder."""
    import av as pyav

    with pyav.open(str(media("video", name))) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == k:
                return f.to_ndarray(format="rgb24")
    raise AssertionError(f"{name} is shorter than {k + 1} frames")


def test_rest_pose_reproduces_the_portrait(astronaut) -> None:
    r = WarpRenderer(astronaut.rig)
    assert astronaut.rig.mouth_open_source
    assert psnr(r.render(r.neutral_values()), astronaut.rig.image) >= 40.0


def test_bilabial_closes_a_smiling_mouth_and_open_vowel_opens_it(astronaut) -> None:
    r = WarpRenderer(astronaut.rig)
    iod = astronaut.rig.iod
    closed = r.target_points(pose_values({"jawOpen": 0.05, "mouthClose": 1.0}))
    gap_closed = closed[T.LIP_INNER_LOWER, 1] - closed[T.LIP_INNER_UPPER, 1]
    assert (gap_closed < 0.01 * iod).all()  # inner lips meet (or press together) along the whole mouth
    opened = r.target_points(pose_values({"jawOpen": 0.7}))
    assert opened[14, 1] - opened[13, 1] > 0.3 * iod
    # pixels: the closed mouth hides the teeth the portrait shows
    ys = slice(int(astronaut.rig.verts[13, 1] - 3), int(astronaut.rig.verts[14, 1] + 3))
    xs = slice(int(astronaut.rig.verts[78, 0] + 5), int(astronaut.rig.verts[308, 0] - 5))
    bright = lambda img: float((img[ys, xs].min(axis=2) > 190).mean())  # noqa: E731
    assert bright(astronaut.rig.image) > 0.1
    assert bright(r.render(pose_values({"jawOpen": 0.05, "mouthClose": 1.0}))) < 0.5 * bright(astronaut.rig.image)


def test_closed_lips_meet_on_one_smooth_line(astronaut) -> None:
    # the portrait's inner-lip contour follows her teeth: closed pair by pair without care, the upper and
    # lower points would meet at different places and leave a zigzag seam with slivers between its steps
    r = WarpRenderer(astronaut.rig)
    closed = r.target_points(pose_values({"jawOpen": 0.0}))
    up, lo = closed[T.LIP_INNER_UPPER[1:-1]], closed[T.LIP_INNER_LOWER[1:-1]]
    assert np.abs(up - lo).max() < 0.5  # every pair meets (pixels)
    seam = 0.5 * (up + lo)
    # the seam bends smoothly: no point is more than a pixel off a parabola through all of them
    fit = np.polyval(np.polyfit(seam[:, 0], seam[:, 1], 2), seam[:, 0])
    assert np.abs(fit - seam[:, 1]).max() < 1.0


def _bright_run_below(img: np.ndarray, x: float, y: float, length: int) -> int:
    """Rows of teeth (every channel bright) in the column at ``x`` below ``y``: the longest bright run, so a
    one-pixel highlight on the lip above the teeth is not taken for them."""
    col = img[int(y) : int(y) + length, int(round(x))].min(axis=1) > 185
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], col.astype(np.int8), [0]]))))[::2]
    return int(runs.max()) if len(runs) else 0


def test_an_opening_jaw_keeps_the_portraits_upper_teeth_whole(astronaut) -> None:
    # her smile shows the upper teeth over most of the opening: they stay with the skull as the jaw
    # drops, whole (split at the middle of the opening they lost half their height to the lower jaw)
    r = WarpRenderer(astronaut.rig)
    v = astronaut.rig.verts
    length = int(0.5 * astronaut.rig.iod)
    src = _bright_run_below(astronaut.rig.image, v[13, 0], v[13, 1] - 2, length)
    assert src >= 5
    pose = pose_values({"jawOpen": 0.6})
    vt = r.target_points(pose)
    frame = r.render(pose)
    assert _bright_run_below(frame, vt[13, 0], vt[13, 1] - 2, length) >= 0.85 * src  # 7 of 7 rows
    # ... across the mouth, not only in the middle (a dark gap between two teeth is no place to split)
    from render.mouth_source import curve

    for share in (0.25, 0.3, 0.4, 0.6, 0.65):
        xs = v[78, 0] + share * (v[308, 0] - v[78, 0])
        xt = vt[78, 0] + share * (vt[308, 0] - vt[78, 0])
        ys = float(curve(v[T.LIP_INNER_UPPER, :2], np.array([xs]))[0])
        yt = float(curve(vt[T.LIP_INNER_UPPER], np.array([xt]))[0])
        before = _bright_run_below(astronaut.rig.image, xs, ys - 2, length)
        assert before >= 4
        # the own teeth move whole with the skull: at least half of their bright run stays under the lip
        assert _bright_run_below(frame, xt, yt - 2, length) >= before // 2


def test_opening_wide_arches_the_upper_lip(pipeline: Pipeline) -> None:
    # in filmed open mouths the upper lip rises over the teeth in the middle: an arch, not a flat top
    av = pipeline.prepare_avatar(media("faces", "liveportrait_s9_mona_lisa.jpg"), (512, 512))
    r = WarpRenderer(av.rig)

    def arch(vt: np.ndarray) -> float:  # how far the middle sits above the points next to the corners
        return float(0.5 * (vt[191, 1] + vt[415, 1]) - vt[13, 1])

    rest, wide = r.target_points(pose_values({})), r.target_points(pose_values({"jawOpen": 0.65}))
    assert arch(wide) - arch(rest) > 0.05 * av.rig.iod  # an arch over the teeth, not a uniform lift


def test_an_open_mouth_shows_a_tongue_below_the_dark_of_the_cavity(pipeline: Pipeline) -> None:
    # as in a filmed open mouth: the floor of the mouth is a lit, pink tongue, dark only above it
    av = pipeline.prepare_avatar(media("faces", "liveportrait_s12_einstein.jpg"), (512, 512))
    r = WarpRenderer(av.rig)
    pose = pose_values({"jawOpen": 0.6})
    vt = r.target_points(pose)
    img = r.render(pose).astype(np.float64)
    x = int(round(vt[13, 0]))
    top, gap = vt[13, 1], vt[14, 1] - vt[13, 1]
    band = lambda a, b: img[int(top + a * gap) : int(top + b * gap), x - 2 : x + 3].reshape(-1, 3)  # noqa: E731
    # (between the upper teeth, down to 0.3 of the gap, and the lower teeth, from 0.8)
    cavity, tongue = band(0.35, 0.52), band(0.6, 0.78)
    assert tongue.mean() > 2.0 * cavity.mean()  # the tongue, not the cavity, fills the floor
    assert (tongue[:, 0] - tongue[:, 1:].mean(axis=1)).mean() > 15  # pinker than grey
    # its back slopes away into the dark: from the cavity's darkest row the light comes up over rows,
    # not in one step (a hard top edge is what dlib took for the lower lip)
    col = img[int(top) : int(top + gap), x - 2 : x + 3].mean(axis=(1, 2))
    k = int(np.argmin(col[: int(0.6 * gap)]))
    level = float(np.median(col[int(0.6 * gap) : int(0.75 * gap)]))
    end = k + int(np.argmax(col[k:] >= col[k] + 0.8 * (level - col[k])))
    assert np.diff(col[k : end + 1]).max() < 0.45 * (level - col[k])  # a soft back edge, no hard step


@pytest.mark.slow  # filmed footage: in the larger media set only
def test_closing_a_wide_open_mouth_meets_cleanly_on_a_large_face(pipeline: Pipeline) -> None:
    # a filmed face with its mouth wide open (teeth and tongue showing), large in the frame: the map is
    # computed on a 4x coarser grid, and upsampled across the seam where the closed lips meet it
    # sampled the opening in zigzags (26 dB from the exact map over the lips); now exact there
    av = pipeline.prepare_avatar(video_frame("hdtf_WDA_KatieHill_000.mp4"), (512, 512))
    assert av.rig.mouth_open_source
    # the rig's inner-lip contour lies on the lips' edge: lip-red just inside it, not just outside
    f = av.rig.image.astype(np.float64)
    red = f[..., 0] - 0.5 * (f[..., 1] + f[..., 2])
    for ids, toward_lip in ((T.LIP_INNER_UPPER[2:-2], -1.5), (T.LIP_INNER_LOWER[2:-2], 1.5)):
        pts = av.rig.verts[ids, :2]
        lip = red[np.round(pts[:, 1] + toward_lip).astype(int), np.round(pts[:, 0]).astype(int)]
        gap = red[np.round(pts[:, 1] - toward_lip).astype(int), np.round(pts[:, 0]).astype(int)]
        assert np.median(lip) > np.median(gap) + 25
    fast, exact = WarpRenderer(av.rig), WarpRenderer(av.rig, map_scale=1)
    assert fast.map_scale > 1
    shut = pose_values({"jawOpen": 0.0})
    lips = fast.target_points(shut)[T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER]
    (x0, y0), (x1, y1) = lips.min(axis=0).astype(int), lips.max(axis=0).astype(int)
    box = (slice(y0, y1), slice(x0, x1))
    assert psnr(fast.render(shut)[box], exact.render(shut)[box]) >= 45.0


def test_a_turned_head_has_a_clean_outline(pipeline: Pipeline) -> None:
    # a large face maps on a grid 4 pixels coarse; where a turned head's near cheek covers the hair behind
    # it the map jumps, and upsampled across the jump the cheek's outline was a staircase of 4-pixel steps
    big = pipeline.prepare_avatar(media("faces", "astronaut_eileen_collins.png"), (1024, 1024))
    fast, exact = WarpRenderer(big.rig), WarpRenderer(big.rig, map_scale=1)
    assert fast.map_scale == 4
    turned = pose_values({"headYaw": 15.0, "jawOpen": 0.3})
    assert psnr(fast.render(turned), exact.render(turned)) == float("inf")
    # small speech-time motion keeps the cheap coarse map, a fraction of a gray level from exact
    small = pose_values({"headYaw": 2.0, "headPitch": 1.0, "jawOpen": 0.4})
    assert psnr(fast.render(small), exact.render(small)) >= 45.0


@pytest.mark.slow  # filmed footage: in the larger media set only
def test_a_turned_faces_eyes_show_the_portraits_eyes_whole(pipeline: Pipeline) -> None:
    # a face turned in its portrait (the LivePortrait video's frame 90) has its far temple lying over its
    # far eye in the picture: drawn over the eye opening, the temple's triangles carried the eye's
    # pixels off with their own parallax when the head turned (the iris showed twice, a dark blob in
    # the white). Inside each opening the frame must show the portrait's eye moved as one piece.
    import cv2

    avatar = pipeline.prepare_avatar(video_frame("liveportrait_d12_talking.mp4", 90), (512, 512))
    r = WarpRenderer(avatar.rig)
    src = avatar.rig.image.astype(np.int16)
    v = pose_values({"headYaw": 12.0, "headPitch": -5.0})
    frame = r.render(v).astype(np.int16)
    vt = r.target_points(v)
    for up, lo, (a, b) in ((T.R_EYE_UPPER, T.R_EYE_LOWER, (33, 133)), (T.L_EYE_UPPER, T.L_EYE_LOWER, (362, 263))):
        inside = np.zeros((512, 512), np.uint8)
        cv2.fillPoly(inside, [np.round(np.concatenate([vt[up], vt[lo][::-1]])).astype(np.int32)], 1)
        inside = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0
        # the portrait's eye, moved rigidly with the eye's corners (warpAffine takes the inverse map)
        aff = similarity(vt[[a, b]], r.v0[[a, b]])
        moved = cv2.warpAffine(avatar.rig.image, aff, (512, 512), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        off = np.abs(frame - moved.astype(np.int16)).max(axis=2)[inside]
        assert inside.sum() > 50
        # the far eye's pixels are the eye's, not other parts of the portrait
        assert (off > 40).mean() < 0.01, (a, (off > 40).mean(), off.max())
    assert np.abs(frame - src).max() > 0  # the head did turn


def test_blink_lowers_the_upper_lid_onto_the_lower(astronaut) -> None:
    r = WarpRenderer(astronaut.rig)
    v0 = astronaut.rig.verts[:, :2]
    vt = r.target_points(pose_values({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}))
    for up, lo in ((T.R_EYE_UPPER[1:-1], T.R_EYE_LOWER[1:-1]), (T.L_EYE_UPPER[1:-1], T.L_EYE_LOWER[1:-1])):
        open_gap = v0[lo, 1] - v0[up, 1]
        shut_gap = vt[lo, 1] - vt[up, 1]
        assert (shut_gap < 0.1 * open_gap.max()).all()


@pytest.fixture(scope="module")
def judge():
    from tools.quality import Judge

    return Judge()


@pytest.mark.parametrize("name", ["astronaut_eileen_collins.png", "obama.jpg", "obama_biden_two_people.jpg"])
def test_independent_judge(name: str, judge, pipeline: Pipeline) -> None:
    from tools.quality import evaluate

    rep = evaluate(media("faces", name), judge, pipeline)
    assert rep.detected == rep.frames  # a face in every frame
    # same person (dlib's threshold is 0.6): the goal is 0.35 on every frame; shut eyes move dlib's
    # embedding most (astronaut: 0.44-0.45 with either lid painter so far), so frames with open eyes and
    # the blink frame are bounded separately
    assert rep.max_embedding_distance_eyes_open <= 0.37
    assert rep.max_embedding_distance <= 0.46
    assert rep.jaw_r >= 0.9  # measured inner-lip opening follows the commanded jaw
    assert rep.ear_drop > 0.0  # dlib sees the eyes narrower at the blink


@pytest.mark.slow  # filmed footage: in the larger media set only
def test_the_judge_scores_a_filmed_face_and_its_real_blinks(capsys) -> None:
    # what real footage scores under the same judge is the yardstick for the renders' figures: the
    # HDTF video's first 60 frames hold two blinks; one of its frames is judged as a portrait
    from tools.quality import main

    video = str(media("video", "hdtf_WDA_KatieHill_000.mp4"))
    assert main([video, "--frame", "30", "--video", video, "--max-frames", "60"]) == 0
    out = capsys.readouterr().out
    assert "hdtf_WDA_KatieHill_000_frame30 " in out and "found 17/17" in out.split("frame30 ")[1].splitlines()[0]
    blinks = next(line for line in out.splitlines() if "blinks: EAR drop" in line)
    drops = [float(x) for x in blinks.split("EAR drop ")[1].split(";")[0].replace("%", "").split(" / ")]
    assert len(drops) >= 2 and min(drops) > 40  # the lids shut as dlib reads them
    p50 = float(out.split("embedding distance p50 ")[1].split(",")[0])
    assert p50 < 0.6  # the same person throughout (dlib's threshold)


def test_synthesized_teeth_stay_fixed_to_the_skull_when_the_lips_stretch(pipeline: Pipeline) -> None:
    # Einstein's portrait shows no teeth: they are drawn. Stretching the lips wider must show the same
    # teeth (same size, same place), not teeth that widen with the mouth.
    av = pipeline.prepare_avatar(media("faces", "liveportrait_s12_einstein.jpg"), (512, 512))
    r = WarpRenderer(av.rig)
    iod = av.rig.iod
    rows = []
    for pose in ({"jawOpen": 0.45}, {"jawOpen": 0.45, "mouthStretch": 0.8}):
        v = pose_values(pose)
        img = r.render(v).astype(np.float64).mean(axis=2)
        vt = r.target_points(v)
        y = int(round(vt[13, 1] + 0.045 * iod))  # through the upper teeth
        rows.append((img[y], vt))
    (a, va), (b, vb) = rows
    assert vb[308, 0] - vb[78, 0] > va[308, 0] - va[78, 0] + 4  # the mouth did get wider
    xc, half = va[13, 0], 0.25 * (va[308, 0] - va[78, 0])
    xs = slice(int(xc - half), int(xc + half))
    assert np.corrcoef(a[xs], b[xs])[0, 1] > 0.9  # the teeth follow the opening


@pytest.mark.parametrize(
    "name", ["liveportrait_s9_mona_lisa.jpg", "liveportrait_s12_einstein.jpg", "obama_biden_two_people.jpg"]
)
def test_a_slightly_open_mouth_shows_dark_below_the_drawn_teeth(name: str, pipeline: Pipeline) -> None:
    # a mouth opened about 0.12 eye distances (speech-sized) showed a wall of drawn teeth from lip to lip:
    # a clenched grin. Filmed speakers show the upper teeth's edges with dark (and the lower teeth, if
    # any) below them, and dlib read the teeth's meeting line as shut lips (Einstein's jaw r 0.63)
    av = pipeline.prepare_avatar(media("faces", name), (512, 512))
    r = WarpRenderer(av.rig)
    v = pose_values({"jawOpen": 0.25})
    img = r.render(v).astype(np.float64).mean(axis=2)
    vt = r.target_points(v)
    assert 0.1 < (vt[14, 1] - vt[13, 1]) / av.rig.iod < 0.14  # the size of opening this is about
    x = int(round(vt[13, 0]))
    column = img[int(np.ceil(vt[13, 1])) + 1 : int(np.floor(vt[14, 1])), x - 1 : x + 2].mean(axis=1)
    teeth = column.max()
    assert teeth > 110  # teeth show
    assert column[: len(column) // 2].max() == teeth  # ... under the upper lip
    assert (column < 0.5 * teeth).mean() >= 0.25  # and dark below them


def test_drawn_teeth_keep_one_smooth_edge_under_a_bumpy_upper_lip(pipeline: Pipeline) -> None:
    # drawn teeth hang under the upper lip, but their edges are fixed to the skull: a bump in the lip line
    # (the tubercle, a painted lip's uneven edge) showed as a step in the teeth's edge, a broken tooth
    av = pipeline.prepare_avatar(media("faces", "liveportrait_s12_einstein.jpg"), (512, 512))
    r = WarpRenderer(av.rig)
    v = pose_values({"jawOpen": 0.6})
    vt = r.target_points(v)
    bumped = vt.copy()
    up = T.LIP_INNER_UPPER
    mid = len(up) // 2
    for k, share in ((0, 1.0), (-1, 0.5), (1, 0.5)):
        bumped[up[mid + k], 1] += share * 0.05 * av.rig.iod  # 3.7 pixels at the middle
    half = int(0.5 * (vt[13, 1] + vt[14, 1]))  # the upper teeth are above the opening's middle
    edges = []
    for pts in (vt, bumped):
        out = np.zeros((512, 512, 3), np.uint8)
        r.mouth.paint(out, pts, v)
        g = out.astype(np.float64).mean(axis=2)
        edge = []
        for x in range(int(vt[up[3], 0]), int(vt[up[-4], 0]) + 1):
            col = g[: half + 1, x]
            level = 0.5 * col[:half].max()
            b = int(np.nonzero(col[:half] > level)[0].max())  # the teeth's last row, then sub-pixel
            edge.append(b + (col[b] - level) / max(col[b] - col[b + 1], 1e-6))
        edges.append(np.array(edge))
    moved = edges[1] - edges[0]
    assert np.ptp(moved) < 2.0  # the edge keeps its shape


def test_a_lip_lifting_off_the_portraits_own_teeth_shows_no_dark_line_above_them(astronaut) -> None:
    # opened wide, the upper lip rises off the astronaut's own (moved) teeth; between them the cavity
    # showed as a dark line along the lip (at the middle, 0.54 of the lip's tone at jaw 0.8)
    r = WarpRenderer(astronaut.rig)
    v = pose_values({"jawOpen": 0.8})
    img = r.render(v).astype(np.float64).mean(axis=2)
    vt = r.target_points(v)
    x, y = int(round(vt[13, 0])), int(np.floor(vt[13, 1])) - 1
    col = img[y : y + int(0.1 * astronaut.rig.iod), x - 3 : x + 4].mean(axis=1)  # lip edge down into the teeth
    teeth = int(np.argmax(col))
    assert col[teeth] > col[0] + 8  # the teeth are there, lighter than the lip
    assert col[: max(teeth, 1)].min() > 0.9 * col[0]  # and nothing darker between


def test_a_shutting_lid_leaves_the_crease_and_the_skin_under_the_brow_in_place(astronaut) -> None:
    # a real lid unfolds below its crease; dragged halfway down with the lid, the crease outlined the
    # shut lid like a second, lower eye
    r = WarpRenderer(astronaut.rig)
    opened = r.target_points(pose_values({}))
    shut = r.target_points(pose_values({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}))
    for lid, crease in (
        (T.R_EYE_UPPER[1:-1], [113, 225, 224, 223, 222, 221, 189]),  # the mesh's second ring above each eye
        (T.L_EYE_UPPER[1:-1], [342, 445, 444, 443, 442, 441, 413]),
    ):
        travel = float((shut[lid, 1] - opened[lid, 1]).mean())
        assert travel > 0.04 * astronaut.rig.iod  # the lid does come down
        moved = np.abs(shut[crease] - opened[crease]).max()
        assert moved < 0.1 * travel  # the crease stays while the lid moves


@pytest.mark.parametrize("name", ["astronaut_eileen_collins.png", "obama.jpg", "liveportrait_s12_einstein.jpg"])
def test_a_shut_lid_covers_the_iris_with_skin(name: str, pipeline: Pipeline) -> None:
    # where the dark iris was (its upper half: the lashes lie along the lower lid when shut), a blink
    # shows lid skin: well on the way from the iris's darkness to the face's skin tone
    av = pipeline.prepare_avatar(media("faces", name), (512, 512))
    r = WarpRenderer(av.rig)
    shut = r.render(pose_values({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})).astype(np.float64).mean(axis=2)
    opened = r.render(pose_values({})).astype(np.float64).mean(axis=2)
    skin = float(av.rig.skin_rgb.mean())
    v = av.rig.verts[:, :2]
    yy, xx = np.mgrid[0 : opened.shape[0], 0 : opened.shape[1]]
    for iris in ([468, 469, 470, 471, 472], [473, 474, 475, 476, 477]):
        c = v[iris].mean(axis=0)
        rad = 0.4 * float(np.linalg.norm(v[iris[1]] - v[iris[3]]))
        upper = ((xx - c[0]) ** 2 + (yy - c[1]) ** 2 < rad**2) & (yy < c[1])
        dark, lid = float(opened[upper].mean()), float(shut[upper].mean())
        assert dark < skin - 30  # the open iris is dark
        assert (lid - dark) / (skin - dark) > 0.15  # the shut lid is skin, not the eye's shadow


@pytest.mark.parametrize("name", ["obama.jpg", "astronaut_eileen_collins.png"])
def test_the_background_stays_still_when_the_head_moves(name: str, pipeline: Pipeline) -> None:
    import cv2

    from render.segment import person_mask

    av = pipeline.prepare_avatar(media("faces", name), (512, 512))
    mask = person_mask(av.rig.image)
    assert mask is not None
    r = WarpRenderer(av.rig)
    rest = r.render(pose_values({})).astype(np.int32)
    turned = r.render(pose_values({"headYaw": 3.0, "headPitch": 2.0, "headRoll": 2.0})).astype(np.int32)
    change = np.abs(turned - rest).max(axis=2)
    # background further than 0.4 eye distances from the person (hair included): nearer, the background
    # bends a little so the mesh stays whole
    k = int(0.4 * av.rig.iod) * 2 + 1
    near_person = cv2.dilate((mask > 0.5).astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    background = ~near_person
    assert background.mean() > 0.15
    # the background beyond the person stays still (the person mask holds it)
    assert (change[background] > 3).mean() < 0.03
    assert (change[~background] > 3).mean() > 0.05  # while the head did move


def _line_darkness_above_lids(frame: np.ndarray, verts: np.ndarray, iod: float, lo: float, hi: float) -> float:
    """How dark the thin lines are in a band ``lo``..``hi`` eye distances above the open upper lids
    (a black-hat: a grey closing less the image), over the middle 60 % of each eye."""
    import cv2

    g = frame.astype(np.float32).mean(axis=2)
    k = max(3, int(round(0.06 * iod)) | 1)
    bh = cv2.morphologyEx(g, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) - g
    out = []
    for up in (T.R_EYE_UPPER, T.L_EYE_UPPER):
        lid = verts[up]
        o = np.argsort(lid[:, 0])
        span = float(np.ptp(lid[:, 0]))
        xs = np.arange(int(lid[:, 0].min() + 0.2 * span), int(lid[:, 0].max() - 0.2 * span))
        ys = np.interp(xs, lid[o, 0], lid[o, 1])
        out += [bh[int(y - hi * iod) : int(y - lo * iod), x].max() for x, y in zip(xs, ys)]
    return float(np.mean(out))


@pytest.mark.parametrize(
    "name",
    [pytest.param("hdtf", marks=pytest.mark.slow), "liveportrait_s12_einstein.jpg"],  # hdtf: filmed
)
def test_a_shut_lid_unfolds_its_crease(name: str, pipeline: Pipeline) -> None:
    # a filmed shut eye shows at most a faint crease: the lid skin stretched over the eyeball flattens
    # the fold. Left as in the open eye, the crease outlined the shut lid like a second eye
    av = pipeline.prepare_avatar(
        video_frame("hdtf_WDA_KatieHill_000.mp4") if name == "hdtf" else media("faces", name), (512, 512)
    )
    r = WarpRenderer(av.rig)
    v, iod = av.rig.verts[:, :2], av.rig.iod
    opened = _line_darkness_above_lids(r.render(pose_values({})), v, iod, 0.09, 0.2)
    shut = _line_darkness_above_lids(
        r.render(pose_values({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})), v, iod, 0.09, 0.2
    )
    assert opened > 20  # the open eye has a crease there
    assert shut < 0.55 * opened  # the crease fades as the lid shuts (the ratio moves ±0.07 with framing)


def test_a_glasses_frame_stays_across_a_shut_lid(pipeline: Pipeline) -> None:
    # the lid patch fills the skin around a shutting eye with its thin dark lines closed away, and a
    # glasses frame's rim across the lid vanished for as long as the eye was shut
    import cv2

    plain = pipeline.prepare_avatar(media("faces", "astronaut_eileen_collins.png"), (512, 512))
    v, iod = plain.rig.verts[:, :2], plain.rig.iod
    img = plain.rig.image.copy()
    rims = []
    for eye in (T.R_EYE_UPPER + T.R_EYE_LOWER, T.L_EYE_UPPER + T.L_EYE_LOWER):
        c = v[eye].mean(axis=0)
        axes = (int(0.42 * iod), int(0.2 * iod))  # its top runs over the lid's crease
        cv2.ellipse(img, (int(c[0]), int(c[1])), axes, 0, 0, 360, (25, 25, 30), max(2, int(0.025 * iod)))
        t = np.radians(np.arange(240, 301, 5))  # the top of the rim, above the eye
        rims.append(np.stack([c[0] + axes[0] * np.cos(t), c[1] + axes[1] * np.sin(t)], axis=1))
    glasses = pipeline.prepare_avatar(img, (512, 512))
    r = WarpRenderer(glasses.rig)
    opened = r.render(pose_values({})).astype(np.float64).mean(axis=2)
    shut = r.render(pose_values({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})).astype(np.float64).mean(axis=2)
    pts = np.round(np.concatenate(rims)).astype(int)
    # the rim is as dark with the eyes shut as open
    assert opened[pts[:, 1], pts[:, 0]].mean() < 60
    lighter = shut[pts[:, 1], pts[:, 0]] - opened[pts[:, 1], pts[:, 0]]
    assert np.percentile(lighter, 90) < 25, np.round(lighter)


def test_a_shut_lids_lashes_have_strands() -> None:
    # the lash line's lower edge is ragged with short strands, not a smooth drawn stroke
    import cv2

    from render.eyes import _draw_strands

    edge = np.stack([np.linspace(20, 120, 12), 40 + 0.002 * (np.linspace(20, 120, 12) - 70) ** 2], axis=1)
    along = (edge[:, 0] - 20) / 100
    strands = np.stack([np.linspace(0.02, 0.98, 30), np.full(30, 1.2), np.zeros(30)], axis=1)
    m = np.zeros((80, 140), np.uint8)
    _draw_strands(m, strands, edge, along, np.full(12, 8.0), np.array([0.0, -1.0]), (0, 0), 1.0, 100.0)
    # strands hang below the edge, tilted toward the outer end (the last point), and stay apart
    ys, xs = np.nonzero(m > 100)
    assert ys.min() >= 38 and ys.max() > 40 + 6
    row = m[46, 20:120] > 100
    assert 10 <= int(np.count_nonzero(np.diff(row.astype(np.int8)) == 1)) <= 30  # separate strands crossed
    assert cv2.countNonZero(m[:, 120:]) > 0  # the outer strands lean out past the lid's end


@pytest.mark.slow  # filmed footage: in the larger media set only
def test_closing_an_open_mouth_with_pale_lips_shows_no_teeth_along_the_seam(pipeline: Pipeline) -> None:
    # the LivePortrait video's face smiles with its teeth showing, blurred, its lips too pale to be told
    # from the teeth by colour; closed, the lip triangles (whose inner edge lies over the teeth) drew
    # the teeth's tops along the seam as a bright zigzag
    av = pipeline.prepare_avatar(video_frame("liveportrait_d12_talking.mp4"), (512, 512))
    assert av.rig.mouth_open_source
    r = WarpRenderer(av.rig)
    vals = pose_values({"jawOpen": 0.0})
    vt = r.target_points(vals)
    f = r.render(vals).astype(np.float64).mean(axis=2)
    up, lo = vt[T.LIP_INNER_UPPER], vt[T.LIP_INNER_LOWER]
    span = float(np.ptp(up[:, 0]))
    xs = np.arange(int(up[:, 0].min() + 0.1 * span), int(up[:, 0].max() - 0.1 * span))
    ou, ol = np.argsort(up[:, 0]), np.argsort(lo[:, 0])
    ys = 0.5 * (np.interp(xs, up[ou, 0], up[ou, 1]) + np.interp(xs, lo[ol, 0], lo[ol, 1]))
    k = max(2, int(0.04 * av.rig.iod))
    seam = np.array([f[int(y) - k : int(y) + k + 1, x].max() for x, y in zip(xs, ys)])
    lips = np.array(
        [np.median(np.r_[f[int(y) - 3 * k : int(y) - k, x], f[int(y) + k : int(y) + 3 * k, x]]) for x, y in zip(xs, ys)]
    )
    assert np.percentile(seam - lips, 90) < 25  # no teeth along the closed seam


def test_closing_a_mouth_whose_opening_is_as_red_as_its_lips_keeps_the_lips_red(pipeline: Pipeline) -> None:
    # a painted mouth (Vermeer's girl) shows dark red inside between red lips, with a few teeth: colour
    # cannot tell the lips from the opening, and the fallback for pale lips painted over a band along the
    # inner contour wider than her thin upper lip, so the closed seam was filled from the skin above (a
    # beige bar between red lips). Lip-red pixels are kept; only the teeth and the opening are filled
    import cv2

    from render.mouth import lip_extended_source
    from render.rig import lip_colours

    base = pipeline.prepare_avatar(media("faces", "astronaut_eileen_collins.png"), (512, 512))
    v = base.rig.verts[:, :2]
    img = base.rig.image.copy()
    inner = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(
        inner, [np.round(np.concatenate([v[T.LIP_INNER_UPPER], v[T.LIP_INNER_LOWER[::-1]]])).astype(np.int32)], 1
    )
    outer = np.zeros_like(inner)
    cv2.fillPoly(
        outer, [np.round(np.concatenate([v[T.LIP_OUTER_UPPER], v[T.LIP_OUTER_LOWER[::-1]]])).astype(np.int32)], 1
    )
    lips = (outer > 0) & (inner == 0)
    img[inner > 0] = (np.median(img[lips], axis=0) * 0.85).astype(np.uint8)  # an opening as red as the lips
    assert lip_colours(img, base.rig.verts) is None
    avatar = pipeline.prepare_avatar(img, (512, 512))
    ext = lip_extended_source(avatar.rig)
    assert ext is not None
    f = img.astype(np.float64)
    redness = f[..., 0] - 0.5 * (f[..., 1] + f[..., 2])
    skin = avatar.rig.skin_rgb.astype(np.float64)
    r_skin = skin[0] - 0.5 * (skin[1] + skin[2])
    red_lip = lips & (redness >= r_skin + 0.75 * (np.median(redness[lips]) - r_skin))
    changed = np.abs(ext.astype(np.float64) - f).max(axis=2) > 10
    assert red_lip.sum() > 100
    # the red lip keeps its pixels; only those beside the opening, which the fill's edge reaches, change
    assert changed[red_lip].mean() < 0.15, changed[red_lip].mean()
    assert changed[inner > 0].mean() > 0.5  # the opening is filled


def test_a_lid_under_a_heavy_brow_shuts_in_its_shadow() -> None:
    # a deep-set eye: dark (brow hair and shadow) all along the top of the area the shut lid fills. Toned
    # from skin alone the lid was a pale patch under the dark brow, which dlib read as an open eye's white
    # (eye aspect ratio higher shut than open); it takes half the dark above at its top
    from render.eyes import _fill_lid

    rng = np.random.default_rng(0)
    skin, dark = np.array([200.0, 150.0, 120.0]), np.array([60.0, 45.0, 40.0])
    roi = np.full((60, 80, 3), skin, np.float32) + rng.normal(0, 3, (60, 80, 3)).astype(np.float32)
    hole = np.zeros((60, 80), bool)
    hole[24:40, 15:65] = True
    roi[6:24, 5:75] = dark  # the overhang above the whole eye
    roi[hole] = (40.0, 30.0, 30.0)  # the open eye
    lid_top = _fill_lid(roi, hole, 100.0)[25:29, 25:55].mean(axis=(0, 1))
    assert (lid_top < skin - 30).all() and (lid_top > dark + 30).all(), lid_top  # shaded, not black


def test_a_brow_bordering_the_lid_does_not_tone_the_shut_lid() -> None:
    # a low brow (Obama's) borders the area a shut lid fills: the lid took its tone from the brow's hairs
    # and shut into a dark smudge. It is skin-toned, from the skin beside the hairs
    from render.eyes import _fill_lid

    rng = np.random.default_rng(0)
    roi = np.full((60, 80, 3), (200.0, 150.0, 120.0), np.float32) + rng.normal(0, 3, (60, 80, 3)).astype(np.float32)
    hole = np.zeros((60, 80), bool)
    hole[24:40, 15:65] = True
    roi[6:24, 25:55] = (60.0, 45.0, 40.0)  # a brow right above the middle of the hole
    roi[hole] = (40.0, 30.0, 30.0)  # the open eye
    filled = _fill_lid(roi, hole, 100.0)
    lid_top = filled[25:29, 32:48].mean(axis=(0, 1))
    assert np.abs(lid_top - (200.0, 150.0, 120.0)).max() < 20  # skin, not the brow's (60, 45, 40)


def test_a_shut_lid_takes_the_tone_of_the_open_lids_skin() -> None:
    # an eye in a shadowed socket: above the area the shut lid fills lies the socket's shadow, but the lid
    # skin visible above the open eye is lit. The shut lid is that skin stretched over the eyeball, so it
    # takes its tone (toned from the shadow above it, it shut into a dark smudge: a SadTalker photo)
    from render.eyes import _fill_lid

    rng = np.random.default_rng(0)
    skin, shadow, lid = np.array([200.0, 150.0, 120.0]), np.array([110.0, 80.0, 70.0]), np.array([190.0, 150.0, 140.0])
    roi = np.full((60, 80, 3), skin, np.float32) + rng.normal(0, 3, (60, 80, 3)).astype(np.float32)
    hole = np.zeros((60, 80), bool)
    hole[24:40, 15:65] = True
    opening = np.zeros_like(hole)
    opening[30:40, 20:60] = True
    roi[6:24, 5:75] = shadow  # the socket's shadow above the eye
    roi[24:30, 15:65] = lid  # the open eye's lid skin
    roi[opening] = (40.0, 30.0, 30.0)  # the open eye
    filled = _fill_lid(roi, hole, 100.0, None, opening)
    mid = filled[31:35, 25:55].mean(axis=(0, 1))
    # about 0.65 lid + 0.35 the skin below (the lid's tone turns into the cheek's towards its edge)
    assert np.abs(mid - (0.65 * lid + 0.35 * skin)).max() < 12, mid
    top = filled[24:26, 25:55].mean(axis=(0, 1))
    assert (top < mid - 20).all(), (top, mid)  # its top meets the shadow without an edge


def _interior_cover(painter, image: np.ndarray, vt: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """How much of each pixel the painted mouth interior covers: painted over black and over white, a
    pixel it covers fully is the same on both, one it leaves alone differs by 255."""
    canvases = []
    for level in (0, 255):
        out = np.full_like(image, level)
        painter.paint(out, vt, pose)
        canvases.append(out.astype(np.float64).mean(axis=2))
    return 1.0 - (canvases[1] - canvases[0]) / 255.0


def test_an_open_mouth_is_a_smooth_outline_not_a_polygon(astronaut) -> None:
    # the lips' 11 points on each side of a round opening: the interior fills the round opening they lie
    # on, anti-aliased on its steep sides as on its flat top, not the 20-sided polygon through them
    from render.mouth import MouthPainter

    rig = astronaut.rig
    vt = rig.verts[:, :2].astype(np.float64).copy()
    c = 0.5 * (vt[13] + vt[14])
    a, b = 0.25 * rig.iod, 0.15 * rig.iod  # half width and half height of the opening, pixels
    t = np.linspace(np.pi, 0.0, len(T.LIP_INNER_UPPER))  # from the left corner to the right one
    vt[T.LIP_INNER_UPPER] = c + np.stack([a * np.cos(t), -b * np.sin(t)], axis=1)
    vt[T.LIP_INNER_LOWER] = c + np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
    alpha = _interior_cover(MouthPainter(rig), rig.image, vt, pose_values({"jawOpen": 0.6}))
    # the exact share of each pixel inside the ellipse (16 x 16 samples a pixel)
    y0, y1, x0, x1 = int(c[1] - b) - 3, int(c[1] + b) + 4, int(c[0] - a) - 3, int(c[0] + a) + 4
    s = (np.arange(16) + 0.5) / 16 - 0.5
    yy = np.arange(y0, y1)[:, None, None, None] + s[None, None, :, None]
    xx = np.arange(x0, x1)[None, :, None, None] + s[None, None, None, :]
    inside = (((xx - c[0]) / a) ** 2 + ((yy - c[1]) / b) ** 2 <= 1.0).mean(axis=(2, 3))
    got = alpha[y0:y1, x0:x1]
    assert abs(got.sum() / inside.sum() - 1.0) < 0.01  # the smooth outline covers the opening's area
    assert np.abs(got - inside).max() < 0.3  # anti-aliased per sub-column


def test_a_turned_open_mouth_shows_nothing_of_its_inside_past_its_corners(pipeline: Pipeline) -> None:
    # turned 14 degrees, the far lips curve back around the corner: their points reach past it, and
    # the interior once showed there as a dark pocket outside the mouth
    from render.mouth import MouthPainter

    av = pipeline.prepare_avatar(media("faces", "liveportrait_s9_mona_lisa.jpg"), (512, 512))
    pose = pose_values({"jawOpen": 0.6, "headYaw": 14})
    vt = WarpRenderer(av.rig).target_points(pose)[:, :2]
    alpha = _interior_cover(MouthPainter(av.rig), av.rig.image, vt, pose)
    xa, xb = sorted((vt[78, 0], vt[308, 0]))
    cols = np.arange(alpha.shape[1])
    assert alpha[:, (cols > xa + 1) & (cols < xb - 1)].max() > 0.99  # the mouth is open
    assert alpha[:, (cols < xa - 1) | (cols > xb + 1)].max() < 0.01


def _closed_smile(rig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rig's mouth shut (a p/b/m): (the frame, its grey blurred a little, the target points)."""
    import cv2

    r = WarpRenderer(rig, draw_eyes=False)
    vals = pose_values({"jawOpen": 0.0, "mouthClose": 1.0})
    out = r.render(vals)
    grey = cv2.GaussianBlur(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 0.7)
    return out, grey, r.target_points(vals)


def _light_above_seam(grey: np.ndarray, vt: np.ndarray, iod: float) -> float:
    """Share of the middle 80 % of the closed seam's columns where, going down the upper lip to the seam,
    the picture turns lighter again (by over 10 grey levels): a band of teeth between lip and seam."""
    seam = 0.5 * (vt[T.LIP_INNER_UPPER] + vt[T.LIP_INNER_LOWER])
    order = np.argsort(seam[:, 0])
    span = float(np.ptp(seam[:, 0]))
    xs = np.arange(int(seam[:, 0].min() + 0.1 * span), int(seam[:, 0].max() - 0.1 * span))
    ys = np.round(np.interp(xs, seam[order, 0], seam[order, 1])).astype(int)
    k = max(3, int(round(0.08 * iod)))
    rise = [float((c - np.minimum.accumulate(c)).max()) for c in (grey[y - k : y, x] for x, y in zip(xs, ys))]
    return float((np.array(rise) > 10).mean())


def _specks_along_seam(grey: np.ndarray, vt: np.ndarray, iod: float) -> int:
    """Pixels near the closed seam lighter by over 12 grey levels than the median around them: the tips
    of teeth showing between shut lips."""
    import cv2

    seam = 0.5 * (vt[T.LIP_INNER_UPPER] + vt[T.LIP_INNER_LOWER])
    order = np.argsort(seam[:, 0])
    xs = np.arange(int(seam[:, 0].min()) + 2, int(seam[:, 0].max()) - 1)
    ys = np.interp(xs, seam[order, 0], seam[order, 1]).astype(int)
    k = max(3, int(0.06 * iod))
    med = cv2.medianBlur(np.clip(grey, 0, 255).astype(np.uint8), 7).astype(np.float32)
    return sum(int(((grey[y - k : y + k + 1, x] - med[y - k : y + k + 1, x]) > 12).sum()) for x, y in zip(xs, ys))


def test_a_toothy_smile_shut_shows_no_specks_of_teeth_between_the_lips(pipeline: Pipeline) -> None:
    # Obama's broad smile: tooth tips in the lips' shadow, left beside the opening or mirrored into it,
    # came out as white specks strung along the shut seam
    rig = pipeline.prepare_avatar(media("faces", "obama.jpg"), (512, 512)).rig
    assert rig.mouth_open_source
    _, grey, vt = _closed_smile(rig)
    assert _specks_along_seam(grey, vt, rig.iod) <= 25


def _dark_past_corners(grey: np.ndarray, pts: np.ndarray, iod: float, skin: float) -> float:
    """How much darker than the skin the darkest pixel just past either outer lip corner is."""
    worst = 0.0
    for c, side in ((61, -1.0), (291, 1.0)):
        cx, cy = pts[c]
        cols = [int(round(cx + side * t * iod)) for t in np.linspace(0.02, 0.08, 7)]
        y0, y1 = int(round(cy - 0.04 * iod)), int(round(cy + 0.04 * iod)) + 1
        worst = max(worst, skin - min(float(grey[y0:y1, x].min()) for x in cols))
    return worst


def _drawn_open_frame_rig(pipeline: Pipeline):
    """The rig the dub builds on a frame of the bundled portrait rendered with its mouth open (drawn teeth)."""
    from motion.types import CHANNEL_INDEX, CHANNELS
    from render.landmarks import MediaPipeFaceMesh
    from render.redub import MouthRedrawer

    v = np.zeros(len(CHANNELS), np.float32)
    v[CHANNEL_INDEX["jawOpen"]] = 0.4
    frame = WarpRenderer(pipeline.prepare_avatar(None, (512, 512)).rig).render(v)
    faces = MediaPipeFaceMesh().detect(frame)
    assert faces
    points = faces[0].points.astype(np.float64)
    rig, _ = MouthRedrawer(frame, points).frame_rig(frame, points)
    return rig


def test_closing_a_toothy_smile_leaves_no_teeth_along_the_seam_and_no_shadow_past_the_corners(
    astronaut, pipeline: Pipeline
) -> None:
    # her own teeth (a portrait) and drawn ones (a dubbed frame): shut, the lips meet on one dark line,
    # with no light band of teeth above it, and the opening's dark corners do not stay behind as marks on
    # the skin past the closed corners
    import cv2

    for rig in (astronaut.rig, _drawn_open_frame_rig(pipeline)):
        assert rig.mouth_open_source
        _, grey, vt = _closed_smile(rig)
        assert _light_above_seam(grey, vt, rig.iod) <= 0.1  # a tooth's faint trace in a few columns at most
        skin = float(np.mean(rig.skin_rgb))
        src = cv2.GaussianBlur(cv2.cvtColor(rig.image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 0.7)
        own = _dark_past_corners(src, rig.verts[:, :2], rig.iod, skin)
        assert _dark_past_corners(grey, vt, rig.iod, skin) <= own + 10


@pytest.mark.slow  # filmed footage: in the larger media set only
def test_closing_a_blurred_pale_lipped_open_mouth_shows_one_seam(pipeline: Pipeline) -> None:
    # the LivePortrait selfie's mouth wide open (tongue, a row of upper teeth under pale lips): shut, the
    # teeth under the detector's inner-lip contour showed as a light band between the upper lip and the
    # seam, a second outline
    from render.landmarks import MediaPipeFaceMesh
    from render.redub import MouthRedrawer

    frame = video_frame("liveportrait_d12_talking.mp4", 176)
    points = MediaPipeFaceMesh().detect(frame)[0].points.astype(np.float64)
    rig, _ = MouthRedrawer(frame, points).frame_rig(frame, points)
    assert rig.mouth_open_source
    _, grey, vt = _closed_smile(rig)
    assert _light_above_seam(grey, vt, rig.iod) <= 0.05
