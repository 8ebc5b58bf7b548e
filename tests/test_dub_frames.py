"""The dub's frame path (I420 in, the face's crop redrawn, I420 out) and the driver's retargeting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from motion.types import CHANNEL_INDEX as C
from motion.types import CHANNELS

FPS = 25.0


def _picture(h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth colour picture with some texture (so chroma and luma both vary)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([60 + 120 * x / w, 40 + 150 * y / h, 120 + 60 * np.sin(x / 7) * np.cos(y / 5)], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_i420_paste_keeps_unweighted_pixels_and_writes_weighted_ones():
    from render.i420 import crop_rgb, paste_rgb, planes

    rgb = _picture()
    yuv = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420))
    before = yuv.copy()
    box = (20, 30, 84, 78)
    crop = crop_rgb(yuv, box)
    assert crop.shape == (48, 64, 3)
    assert np.abs(crop.astype(int) - rgb[30:78, 20:84].astype(int)).mean() < 2.0
    red = np.zeros_like(crop)
    red[..., 0] = 200
    weight = np.zeros(crop.shape[:2], np.float32)
    weight[10:30, 16:48] = 1.0
    paste_rgb(yuv, box, red, weight)
    y, u, v = planes(yuv)
    y0, u0, v0 = planes(before)
    # weight 0: the decoded values exactly, inside the box and out
    changed = np.zeros(y.shape, bool)
    changed[40:60, 36:68] = True
    assert np.array_equal(y[~changed], y0[~changed])
    assert np.array_equal(u[:20], u0[:20]) and np.array_equal(v[:, :18], v0[:, :18])
    # weight 1: the pasted colour
    back = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)[42:58, 38:66].reshape(-1, 3).mean(axis=0)
    assert abs(back[0] - 200) < 6 and back[1] < 12 and back[2] < 12
    with pytest.raises(ValueError, match="even"):
        crop_rgb(yuv, (21, 30, 84, 78))


def test_i420_frames_are_written_and_read_back(tmp_path):
    from talker.mp4 import Mp4Writer
    from talker.video import read_frames, read_i420

    rgb = _picture(97, 131)  # odd: the readers drop the last row and column
    path = tmp_path / "odd.mp4"
    with Mp4Writer(path, 130, 96, FPS, 16000, crf=12) as w:
        for _ in range(5):
            w.write_yuv(np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb[:96, :130]), cv2.COLOR_RGB2YUV_I420)))
        with pytest.raises(ValueError, match="I420"):
            w.write_yuv(np.zeros((96, 130), np.uint8))
    frames = list(read_frames(path))
    assert len(frames) == 5 and frames[0].shape == (96, 130, 3)
    assert np.abs(frames[2].astype(int) - rgb[:96, :130].astype(int)).mean() < 3.0
    yuv = list(read_i420(path))
    assert len(yuv) == 5 and yuv[0].shape == (144, 130)


def test_a_variable_frame_rate_video_is_read_at_its_rate_each_picture_at_its_time(tmp_path):
    """A phone drops frames in low light: the pictures kept carry their times. Read at the stream's rate,
    each shows for as long as its time says (repeated), so the video keeps its length and stays in step
    with its sound; a video at a constant rate reads frame for frame."""
    import fractions

    import av

    from talker.video import probe_video, read_frames

    # 25 fps for 1 s, then only every third frame for 1.2 s, then 25 fps again for 0.4 s
    times_ms = [40 * k for k in range(25)] + [1000 + 120 * k for k in range(10)] + [2200 + 40 * k for k in range(10)]
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"crf": "0"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = fractions.Fraction(1, 1000)
        for k, t in enumerate(times_ms):
            img = np.full((48, 64, 3), 5 * k, np.uint8)  # the picture's number in its grey
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = t, fractions.Fraction(1, 1000)
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    info = probe_video(path)
    frames = list(read_frames(path))
    shown = [int(round(f[:, :, 0].mean() / 5)) for f in frames]
    assert len(frames) == 65 == round(2.6 * info.fps), "2.6 s at 25 fps"
    # frame k shows the last picture whose time is before k + 1/2 frames
    expect = [max(i for i, t in enumerate(times_ms) if t <= 40 * k + 20) for k in range(65)]
    assert shown == expect
    assert shown[25:28] == [25, 25, 25] and shown[-1] == 44


def test_redraw_leaves_the_frame_outside_its_region_as_it_was(tmp_path):
    """The dub's redraw changes pixels only inside the region it reports, and none above the nose's bottom."""
    from render.redub import MouthRedrawer
    from render.warp import WarpRenderer
    from talker.pipeline import Pipeline

    r = WarpRenderer(Pipeline().prepare_avatar(None, (512, 512)).rig)
    v = np.zeros(len(CHANNELS), np.float32)
    v[C["jawOpen"]] = 0.5
    frame = r.render(v)
    from render.landmarks import MediaPipeFaceMesh

    points = MediaPipeFaceMesh().detect(frame)[0].points
    red = MouthRedrawer(frame, points)
    out = red.redraw(frame, points, np.zeros(6, np.float32))  # shut the open mouth
    x0, y0, x1, y1 = red.region(points, (512, 512))
    changed = np.abs(out.astype(int) - frame.astype(int)).max(axis=2) > 0
    assert changed[y0:y1, x0:x1].sum() > 200
    inside = np.zeros_like(changed)
    inside[y0:y1, x0:x1] = True
    assert not changed[~inside].any()
    iod = float(np.linalg.norm(points[468, :2] - points[473, :2]))
    assert not changed[: int(points[2, 1] - 0.1 * iod)].any()  # the nose, eyes and everything above


def test_dub_decoding_twice_gives_the_same_video_as_decoding_once(tmp_path, monkeypatch):
    """A video too large to keep in memory is decoded again for the redraw, with the same result."""
    from render.warp import WarpRenderer
    from talker.dub import DubSettings, dub_video
    from talker.pipeline import Pipeline
    from talker.video import read_frames

    r = WarpRenderer(Pipeline().prepare_avatar(None, (256, 256)).rig)
    n = 20
    v = np.zeros((n, len(CHANNELS)), np.float32)
    v[:, C["jawOpen"]] = 0.4
    v[:, C["headYaw"]] = np.linspace(-4, 4, n)
    from talker.mp4 import Mp4Writer

    video = tmp_path / "v.mp4"
    with Mp4Writer(video, 256, 256, FPS, 16000, crf=14) as w:
        for row in v:
            w.write_audio(np.zeros(640, np.float32))
            w.write_video(r.render(row))
    from audio.types import SILENCE, Phone, Speech

    speech = Speech(np.zeros(16000, np.float32), 16000, (Phone(0.0, 1.0, SILENCE),))
    monkeypatch.setenv("TALKER_PROVENANCE", "off")  # each output's marks carry a random id
    once = dub_video(video, speech, tmp_path / "once.mp4", DubSettings(fit="loop"))
    twice = dub_video(video, speech, tmp_path / "twice.mp4", DubSettings(fit="loop", cache_bytes=0))
    a, b = list(read_frames(once.path)), list(read_frames(twice.path))
    assert once.n_frames == twice.n_frames == 25 and len(a) == len(b) == 25
    assert once.face_share == twice.face_share == 1.0
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_retarget_passes_small_motion_and_eases_large_motion_into_range():
    from talker.drive import RETARGET_LIMITS, retarget

    n = 200
    v = np.zeros((n, len(CHANNELS)), np.float32)
    v[:, C["headYaw"]] = np.linspace(-25, 25, n)
    v[:, C["jawOpen"]] = np.linspace(0, 1, n)
    v[:, C["eyeBlinkLeft"]] = np.linspace(0, 1, n)
    out = retarget(v)
    yaw = out[:, C["headYaw"]]
    assert np.all(np.diff(yaw) > 0)  # the order of the driver's poses is kept
    assert np.abs(yaw).max() < RETARGET_LIMITS["headYaw"]
    small = np.abs(v[:, C["headYaw"]]) < 3
    assert np.allclose(yaw[small], v[small, C["headYaw"]], atol=0.2)
    assert out[:, C["jawOpen"]].max() < RETARGET_LIMITS["jawOpen"]
    assert np.array_equal(out[:, C["eyeBlinkLeft"]], v[:, C["eyeBlinkLeft"]])  # blinks as they are
    assert np.corrcoef(yaw, v[:, C["headYaw"]])[0, 1] > 0.9
    # a portrait with its own mouth open (0.3) keeps half of it while the driver's is shut, and opens
    # further with the driver's
    jaw = retarget(v, rest_jaw=0.3)[:, C["jawOpen"]]
    assert abs(jaw[0] - 0.15) < 0.01 and np.all(np.diff(jaw) > 0)
    assert np.allclose(retarget(v, rest_jaw=0.0)[:, C["jawOpen"]], out[:, C["jawOpen"]])


def test_drive_keeps_a_wide_head_turn_within_the_portraits_range(tmp_path):
    """A driver turning far (30 degrees) turns the portrait less; its small turns follow as they are."""
    from render.encoder import encode_frames
    from render.warp import WarpRenderer
    from talker.drive import RETARGET_LIMITS, drive_portrait
    from talker.mp4 import Mp4Writer
    from talker.pipeline import Pipeline
    from talker.video import read_frames

    r = WarpRenderer(Pipeline().prepare_avatar(None, (320, 320)).rig)
    n = 50
    v = np.zeros((n, len(CHANNELS)), np.float32)
    v[:, C["headYaw"]] = 30 * np.sin(2 * np.pi * np.arange(n) / n)
    video = Path(tmp_path / "turn.mp4")
    with Mp4Writer(video, 320, 320, FPS, 16000, crf=14) as w:
        for row in v:
            w.write_audio(np.zeros(640, np.float32))
            w.write_video(r.render(row))
    out = drive_portrait(None, video, tmp_path / "drive.mp4", size=(320, 320))
    performed = out.track.channel("headYaw")
    assert np.abs(performed).max() <= RETARGET_LIMITS["headYaw"]
    assert np.corrcoef(performed, v[:, C["headYaw"]])[0, 1] > 0.9
    again = encode_frames(list(read_frames(out.path)), FPS).track.channel("headYaw")
    assert np.ptp(again) < 0.8 * np.ptp(v[:, C["headYaw"]])
    assert np.corrcoef(again, v[:, C["headYaw"]])[0, 1] > 0.9


def test_closing_a_wide_open_frame_takes_the_shots_own_closed_mouth(pipeline) -> None:
    # a dubbed p/b/m over a frame where the speaker's mouth is wide open: closed in that shape, the lips
    # meet on a line that sags into the corners; with the shot's closed frame as the rest shape they meet
    # along the person's own line
    from render import topology as T
    from render.landmarks import MediaPipeFaceMesh
    from render.redub import MOUTH_CHANNELS, MouthRedrawer, closed_frame
    from render.warp import WarpRenderer

    renderer = WarpRenderer(pipeline.prepare_avatar(None, (512, 512)).rig)
    mesh = MediaPipeFaceMesh()

    def frame(**channels: float) -> tuple[np.ndarray, np.ndarray]:
        v = np.zeros(len(CHANNELS), np.float32)
        for name, x in channels.items():
            v[C[name]] = x
        img = renderer.render(v)
        faces = mesh.detect(img)
        assert faces
        return img, faces[0].points.astype(np.float64)

    shut, shut_pts = frame()
    wide, wide_pts = frame(jawOpen=0.9, mouthPucker=0.7)
    assert closed_frame(np.stack([wide_pts, shut_pts])) == 1

    def gap(pts: np.ndarray) -> float:
        """The inner-lip gap in the middle of the mouth, pixels."""
        return float(np.median(pts[T.LIP_INNER_LOWER[3:-3], 1] - pts[T.LIP_INNER_UPPER[3:-3], 1]))

    # where the lips meet in the picture: the darkest row near the closed mouth's line, per column
    xs = np.arange(int(shut_pts[61, 0]) + 3, int(shut_pts[291, 0]) - 2)
    line = 0.5 * (shut_pts[T.LIP_INNER_UPPER] + shut_pts[T.LIP_INNER_LOWER])
    centre = np.interp(xs, line[:, 0], line[:, 1])
    reach = int(0.12 * (shut_pts[291, 0] - shut_pts[61, 0]))

    def seam(img: np.ndarray) -> np.ndarray:
        grey = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
        rows = [grey[c - reach : c + reach + 1, x] for x, c in zip(xs, centre.astype(int))]
        return centre.astype(int) - reach + np.array([np.argmin(r) for r in rows])

    close = np.array([1.0 if c == "mouthClose" else 0.0 for c in MOUTH_CHANNELS], np.float32)
    own = seam(shut)
    off, gaps = {}, {}
    for rest in (None, shut_pts):
        out = MouthRedrawer(wide, wide_pts, rest=rest).redraw(wide, wide_pts, close)
        faces = mesh.detect(out)
        assert faces
        gaps[rest is None] = gap(faces[0].points)
        diff = seam(out) - own  # its shape: where the jaw leaves the line is not compared
        off[rest is None] = float(np.mean(np.abs(diff - np.median(diff))))
    assert gap(wide_pts) > 30  # the frame's mouth is wide open
    assert gaps[False] < 2, gaps  # and the redraw shuts it
    # the lips meet along the person's own line (a smile's, curving up into the corners); with the open
    # frame's shape kept the line sagged into the corners
    assert off[False] < 0.5 * off[True], off


def test_the_shots_closed_mouth_is_its_typical_one_not_a_grin(pipeline) -> None:
    # of the frames with the lips together, the one as wide as most of them: a grin (the lips pressed
    # tightest, the corners pulled out) would make every dubbed closure a grin
    from render import topology as T
    from render.redub import closed_frame

    lm = pipeline.prepare_avatar(None, (512, 512)).rig.verts[:478].astype(np.float64)
    iod = float(np.linalg.norm(lm[473, :2] - lm[468, :2]))
    frames = []
    for widen, gap in ((0.0, 0.02), (0.02, 0.03), (-0.02, 0.025), (0.25, 0.001), (0.0, 0.3)):
        p = lm.copy()
        p[T.LIP_INNER_LOWER, 1] = p[T.LIP_INNER_UPPER, 1] + gap * iod  # lips this far apart
        p[291, 0] += widen * iod / 2
        p[61, 0] -= widen * iod / 2
        frames.append(p)
    frames.append(np.full_like(lm, np.nan))  # no face
    assert closed_frame(np.stack(frames)) == 0
    assert closed_frame(np.stack(frames[4:])) is None  # only an open mouth


# --- a filmed open mouth's lips and chin, as the redraw reads them -----------------------------------


def _open_mouth_face(gap_iod: float = 0.35) -> np.ndarray:
    """The canonical face in pixels (IOD 100) with its jaw dropped ``gap_iod``: lower lips and chin down."""
    from render import topology as T
    from render.canonical import canonical_mesh

    m = canonical_mesh().copy()
    lower = m[:, 1] > m[T.LIP_INNER_LOWER[5], 1] - 0.01
    m[lower, 1] += gap_iod
    return (m * 100 + np.array([256.0, 200.0, 0.0])).astype(np.float64)


def _painted_mouth(lm: np.ndarray, interior: tuple[int, int, int]) -> np.ndarray:
    """A skin-coloured picture with red lips between the mesh's lip contours and ``interior`` inside."""
    from render import topology as T

    img = np.full((512, 512, 3), (205, 150, 130), np.uint8)
    outer = np.concatenate([lm[T.LIP_OUTER_UPPER, :2], lm[T.LIP_OUTER_LOWER[::-1][1:-1], :2]])
    inner = np.concatenate([lm[T.LIP_INNER_UPPER, :2], lm[T.LIP_INNER_LOWER[::-1][1:-1], :2]])
    cv2.fillPoly(img, [np.round(outer).astype(np.int32)], (170, 80, 85))
    cv2.fillPoly(img, [np.round(inner).astype(np.int32)], interior)
    return img


def test_the_lower_lips_edge_is_not_carried_onto_a_tongue():
    """An open mouth's inner lower lip is found where the lip's colour ends; a tongue as red as the lip
    (no end in reach) leaves it where the mesh put it."""
    from render import topology as T
    from render.lips import snap_inner_lips

    lm = _open_mouth_face()
    ids = T.LIP_INNER_LOWER[4:7]
    img = _painted_mouth(lm, (60, 25, 35))
    mesh = lm.copy()
    mesh[ids, 1] += 4.0  # the mesh's contour a little inside the lip
    snapped = snap_inner_lips(img, mesh, 100.0)
    assert np.abs(snapped[ids, 1] - lm[ids, 1]).max() < 1.5, "found the lip's edge"
    # a tongue filling the opening's lower part, as red as the lip: the contour stays
    tongue = img.copy()
    for i in ids:
        x, y = np.round(lm[i, :2]).astype(int)
        tongue[y - 12 : y, x - 6 : x + 6] = (172, 82, 86)
    snapped = snap_inner_lips(tongue, mesh, 100.0)
    assert np.abs(snapped[ids, 1] - mesh[ids, 1]).max() < 0.5, snapped[ids, 1] - mesh[ids, 1]


def test_a_chin_crowded_against_an_open_lower_lip_is_moved_back_down():
    """The detector's chin pressed up against (or above) a wide-open lower lip goes back to most of its
    depth below the lip with the lips together; lips, eyes and a chin where it should be stay put."""
    from render import topology as T
    from render.lips import chin_under_lips, depths_under_lip

    face = _open_mouth_face()
    closed = depths_under_lip(_open_mouth_face(0.0))
    assert np.array_equal(chin_under_lips(face, closed), face)
    crowded = face.copy()
    chin = face[:, 1] > face[17, 1] + 1.0
    chin &= np.abs(face[:, 0] - face[17, 0]) < 30
    crowded[chin, 1] = face[17, 1] + 0.3 * (face[chin, 1] - face[17, 1]) - 3.0  # 18 and 200 above the lip
    fixed = chin_under_lips(crowded, closed)
    assert (depths_under_lip(fixed) >= 0.8 * closed - 1e-6).all()
    assert fixed[T.CHIN, 1] - fixed[17, 1] > 0.75 * (face[T.CHIN, 1] - face[17, 1])
    keep = T.LIP_OUTER_LOWER + T.LIP_INNER_LOWER + T.LIP_OUTER_UPPER + T.R_EYE_UPPER + T.L_EYE_UPPER
    assert np.array_equal(fixed[keep], crowded[keep])
