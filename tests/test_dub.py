"""Motion encoder, ``talker dub`` and ``talker drive`` on videos the tests render themselves from the
bundled portrait (no outside media)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import media, write_video

from audio.types import SILENCE, Phone, Speech
from motion.types import CHANNEL_INDEX as C
from motion.types import CHANNELS, MotionTrack

FPS = 25.0


def _round_trip_track(n: int = 150) -> MotionTrack:
    """Jaw, blinks, head turns, smile and gaze: whole periods, so each channel's median is its rest."""
    t = np.arange(n) / FPS
    v = np.zeros((n, len(CHANNELS)), np.float32)
    v[:, C["jawOpen"]] = np.clip(0.35 + 0.3 * np.sin(2 * np.pi * 1.3 * t) + 0.15 * np.sin(2 * np.pi * 3.1 * t), 0, 0.9)
    for b in [b for b in (20, 60, 110) if b + 3 <= n]:
        v[b - 2 : b + 3, C["eyeBlinkLeft"]] = v[b - 2 : b + 3, C["eyeBlinkRight"]] = [0.4, 0.9, 1, 0.9, 0.4]
    v[:, C["headYaw"]] = 8 * np.sin(2 * np.pi * t / 6.0)
    v[:, C["headPitch"]] = 4 * np.sin(2 * np.pi * t / 3.0)
    v[:, C["headRoll"]] = 5 * np.sin(2 * np.pi * t / 2.0)
    v[:, C["eyeLookX"]] = 0.6 * np.sin(2 * np.pi * t / 3.0)
    return MotionTrack(FPS, v)


@pytest.fixture(scope="module")
def renderer():
    from render.warp import WarpRenderer
    from talker.pipeline import Pipeline

    return WarpRenderer(Pipeline().prepare_avatar(None, (512, 512)).rig)


@pytest.fixture(scope="module")
def round_trip(renderer):
    from render.encoder import encode_frames

    track = _round_trip_track()
    frames = [renderer.render(row) for row in track.values]
    return track, encode_frames(frames, FPS)


def _onsets(x: np.ndarray) -> list[int]:
    above = x > 0.5
    return [int(k) for k in np.where(above[1:] & ~above[:-1])[0] + 1]


def test_round_trip_jaw_blinks_and_head(round_trip):
    """A track rendered on the portrait and encoded back from the frames gives the same channels."""
    track, enc = round_trip
    e = enc.track
    assert e.n_frames == track.n_frames and e.fps == FPS
    assert enc.faces.found.all()
    jaw_r = np.corrcoef(track.channel("jawOpen"), e.channel("jawOpen"))[0, 1]
    assert jaw_r >= 0.9, jaw_r
    for eye in ("eyeBlinkLeft", "eyeBlinkRight"):
        want, got = _onsets(track.channel(eye)), _onsets(e.channel(eye))
        assert len(got) == len(want), (eye, want, got)
        assert max(abs(a - b) for a, b in zip(want, got)) <= 1, (eye, want, got)
    for name in ("headYaw", "headRoll"):
        err = np.abs(track.channel(name) - e.channel(name))
        assert err.mean() < 2.0 and np.percentile(err, 90) < 3.0, (name, err.mean(), err.max())
    # the pitch is read short (mediapipe sees the warped head tilt less), but follows
    assert np.corrcoef(track.channel("headPitch"), e.channel("headPitch"))[0, 1] > 0.85
    assert np.corrcoef(track.channel("eyeLookX"), e.channel("eyeLookX"))[0, 1] > 0.8


def test_a_turned_head_reads_back_as_far_as_it_was_turned(renderer):
    """A portrait turned 10 degrees either way and held there is read back by the encoder within 1.5 degrees
    of 10 (drawn without the camera's perspective, a turn reads 10-20 % short)."""
    from render.encoder import encode_frames

    hold = 12
    yaw = np.concatenate([np.zeros(3 * hold), np.full(hold, 10.0), np.zeros(hold), np.full(hold, -10.0)])
    v = np.zeros((len(yaw), len(CHANNELS)), np.float32)
    v[:, C["headYaw"]] = yaw
    read = encode_frames([renderer.render(row) for row in v], FPS).track.channel("headYaw")
    for start, want in ((3 * hold, 10.0), (5 * hold, -10.0)):
        got = float(np.median(read[start + hold // 2 : start + hold]))
        assert abs(got - want) < 1.5, (want, got)


def test_a_nodded_head_reads_back_nodded_and_expressions_do_not(renderer):
    """A portrait nodded 10 degrees down, then up, and held: read back the right way and at least 6 degrees
    on average (mediapipe places a rendered nod's points 65-90 % of the way, this portrait's least), while
    raised or lowered brows with the head still read as a nod of under a degree."""
    from render.encoder import encode_frames

    hold = 12
    rows = np.zeros((8 * hold, len(CHANNELS)), np.float32)
    rows[3 * hold : 4 * hold, C["headPitch"]] = 10.0
    rows[5 * hold : 6 * hold, C["headPitch"]] = -10.0
    rows[6 * hold : 7 * hold, C["browInnerUp"]] = 1.0
    rows[7 * hold :, C["browDown"]] = 1.0
    read = encode_frames([renderer.render(row) for row in rows], FPS).track.channel("headPitch")

    def held(k: int) -> float:
        return float(np.median(read[k * hold + hold // 2 : (k + 1) * hold]))

    down, up = held(3), held(5)
    assert down > 0 > up, (down, up)
    assert 6.0 <= (down - up) / 2 <= 10.5, (down, up)
    assert abs(held(6)) < 1.0 and abs(held(7)) < 1.0, (held(6), held(7))


def test_narrowed_eyes_read_back_narrowed_not_open(renderer):
    """Lids lowered part way and held (eyes narrowed looking down, or in a smile) read back as part of a
    blink, more the further they are lowered, so a driven portrait narrows its eyes with the driver; open
    eyes read open."""
    from render.encoder import encode_frames

    hold = 12
    lids = np.concatenate([np.zeros(3 * hold), np.full(hold, 0.25), np.zeros(hold), np.full(hold, 0.5)])
    v = np.zeros((len(lids), len(CHANNELS)), np.float32)
    v[:, C["eyeBlinkLeft"]] = v[:, C["eyeBlinkRight"]] = lids
    track = encode_frames([renderer.render(row) for row in v], FPS).track
    read = 0.5 * (track.channel("eyeBlinkLeft") + track.channel("eyeBlinkRight"))

    def held(k: int) -> float:
        return float(np.median(read[k * hold + hold // 2 : (k + 1) * hold]))

    opened, quarter, half = held(2), held(3), held(5)
    assert opened < 0.05, opened
    assert 0.08 < quarter < half < 0.9, (quarter, half)


def test_encoder_bridges_a_lost_face_and_splits_shots(renderer):
    """A face hidden for a frame is bridged; a cut to a picture without one leaves those frames neutral."""
    from render.encoder import encode_frames

    track = _round_trip_track(40)
    frames = [renderer.render(row) for row in track.values]
    blank = np.full_like(frames[0], 128)
    covered = frames[10].copy()
    covered[150:400, 150:370] = 128  # a hand over the face for one frame: bridged
    frames[10] = covered
    frames[30:] = [blank] * 10  # the face gone for good
    enc = encode_frames(frames, FPS)
    assert enc.faces.valid[10] and not enc.faces.found[10]
    assert not enc.faces.valid[30:].any()
    assert np.all(enc.track.values[30:] == 0)


def test_no_face_video_is_refused():
    from render.encoder import VideoFaceError, encode_frames

    frames = [np.full((128, 128, 3), 40 + k, np.uint8) for k in range(5)]
    with pytest.raises(VideoFaceError, match="no face found in any of the video's 5 frames"):
        encode_frames(frames, FPS)


def test_fit_policies_map_output_frames_to_video_frames():
    from talker.dub import output_frames, source_frame

    assert [source_frame(k, 4, "loop") for k in range(9)] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert [source_frame(k, 4, "pingpong") for k in range(9)] == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert [source_frame(k, 4, "hold") for k in range(6)] == [0, 1, 2, 3, 3, 3]
    assert output_frames(100, 60, "cut") == 60 and output_frames(100, 160, "loop") == 160
    assert output_frames(100, 60, "hold") == 100


# --- dubbing and driving on a rendered talking video ---------------------------------------------


@pytest.fixture(scope="module")
def talking_video(renderer, tmp_path_factory):
    """3 s of the portrait with its mouth held open (0.4), turning its head and blinking once."""
    n = 75
    t = np.arange(n) / FPS
    v = np.zeros((n, len(CHANNELS)), np.float32)
    v[:, C["jawOpen"]] = 0.4 + 0.05 * np.sin(2 * np.pi * t)
    v[:, C["headYaw"]] = 6 * np.sin(2 * np.pi * t / 3.0)
    v[30:35, C["eyeBlinkLeft"]] = v[30:35, C["eyeBlinkRight"]] = [0.4, 0.9, 1, 0.9, 0.4]
    frames = [renderer.render(row) for row in v]
    sr = 16000
    audio = (0.1 * np.sin(2 * np.pi * 220 * np.arange(int(n / FPS * sr)) / sr)).astype(np.float32)
    return write_video(tmp_path_factory.mktemp("video") / "talking.mp4", frames, audio), v


def _speech() -> Speech:
    """'ma pa ba ma' with closed pauses around: phones and a voiced signal (no TTS needed)."""
    sr = 16000
    seq = [(SILENCE, 0.4)] + [(s, d) for c in "MPBM" for s, d in ((c, 0.1), ("AA", 0.28))] + [(SILENCE, 0.5)]
    phones, t = [], 0.0
    parts = []
    for sym, d in seq:
        phones.append(Phone(t, t + d, sym))
        n = int(round(d * sr))
        k = np.arange(n) / sr
        amp = 0.0 if sym == SILENCE else (0.3 if sym == "AA" else 0.05)
        parts.append((amp * np.sign(np.sin(2 * np.pi * 140 * k))).astype(np.float32))
        t += d
    return Speech(np.concatenate(parts), sr, tuple(phones))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_dub_closes_the_lips_on_bilabials_and_keeps_the_upper_face(talking_video, tmp_path):
    from render.landmarks import MediaPipeFaceMesh
    from render.mouth_bank import lip_gap_iod
    from talker.dub import DubSettings, dub_video
    from talker.video import probe_video, read_audio, read_frames

    video, _ = talking_video
    speech = _speech()
    out = dub_video(video, speech, tmp_path / "dub.mp4", DubSettings(fit="cut"))
    info = probe_video(out.path)
    assert (info.width, info.height, info.fps) == (512, 512, FPS)
    assert out.n_frames == int(np.ceil(speech.duration_s * FPS - 1e-9)) and out.face_share == 1.0
    audio = read_audio(out.path, 16000)
    assert audio is not None and abs(len(audio[0]) / 16000 - speech.duration_s) < 0.1
    src = list(read_frames(video))
    dub = list(read_frames(out.path))
    mesh = MediaPipeFaceMesh()
    for p in speech.phones:
        k = int((p.start_s + p.end_s) / 2 * FPS)
        face = mesh.detect(dub[k])
        assert face, f"no face in dubbed frame {k}"
        gap = lip_gap_iod(face[0].points)
        if p.symbol in "MPB" or (p.symbol == SILENCE and p.duration_s > 0.3):
            # the source's mouth is open (0.2 IOD) there: the dub shut it (mediapipe reads a shut mouth up to
            # 0.075 IOD apart on this portrait, its points moved by the encodes' random marks and x264 threads)
            assert gap < 0.1, (p, k, gap)
        elif p.symbol == "AA":
            assert gap > 0.15, (p, k, gap)
        # above the nose the frame is the source's own
        nose_y = int(mesh.detect(src[k])[0].points[2, 1])
        assert _psnr(dub[k][: nose_y - 4], src[k][: nose_y - 4]) >= 35.0


def test_dub_loops_a_short_video_and_passes_faceless_frames(tmp_path, renderer):
    from talker.dub import DubSettings, dub_video
    from talker.video import read_frames

    face = renderer.render(np.zeros(len(CHANNELS)))
    blank = np.full_like(face, 90)
    frames = [face] * 10 + [blank] * 5
    video = write_video(tmp_path / "short.mp4", frames, np.zeros(16000, np.float32))
    out = dub_video(video, _speech(), tmp_path / "loop.mp4", DubSettings(fit="loop"))
    assert out.n_frames == int(np.ceil(_speech().duration_s * FPS - 1e-9)) > 15
    assert 0.5 < out.face_share < 0.8
    dubbed = list(read_frames(out.path))
    source = list(read_frames(video))
    for k in (12, 27):  # video frame 12 (no face), as such and looped: only the dub's invisible watermark added
        assert _psnr(dubbed[k], source[12]) >= 40.0
    assert any("no trackable face" in n for n in out.notes)


def test_drive_moves_another_portrait_like_the_video(talking_video, tmp_path):
    from render.encoder import encode_frames
    from talker.drive import drive_portrait
    from talker.portrait import default_portrait_path
    from talker.video import probe_video, read_audio, read_frames

    video, v = talking_video
    obama = default_portrait_path().with_name("obama.jpg")
    out = drive_portrait(obama, video, tmp_path / "drive.mp4", size=(384, 384))
    info = probe_video(out.path)
    assert (info.width, info.height) == (384, 384) and out.n_frames == len(v)
    audio = read_audio(out.path, 16000)
    assert audio is not None and np.abs(audio[0]).max() > 0.05  # the driver's tone, kept
    again = encode_frames(list(read_frames(out.path)), FPS).track
    yaw_r = np.corrcoef(v[:, C["headYaw"]], again.channel("headYaw"))[0, 1]
    assert yaw_r > 0.9, yaw_r
    assert _onsets(again.channel("eyeBlinkLeft")) and abs(_onsets(again.channel("eyeBlinkLeft"))[0] - 31) <= 1


def test_bad_inputs_get_specific_errors(tmp_path):
    import av

    from talker.cli import main
    from talker.video import VideoError, probe_video, read_frames

    wav = tmp_path / "speech.wav"
    with av.open(str(wav), "w") as c:
        s = c.add_stream("pcm_s16le", rate=16000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for pkt in s.encode(frame):
            c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    with pytest.raises(VideoError, match="no video stream .*audio-only"):
        probe_video(wav)
    with pytest.raises(VideoError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a video" * 100)
    with pytest.raises(VideoError, match="not a readable video"):
        probe_video(junk)
    with pytest.raises(VideoError, match="lasts .* the limit"):
        probe_video(write_video(tmp_path / "v.mp4", [np.zeros((64, 64, 3), np.uint8)] * 30, np.zeros(0)), 0.5)
    whole = (tmp_path / "v.mp4").read_bytes()
    cut = tmp_path / "truncated.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(VideoError):
        probe_video(cut)
        list(read_frames(cut))
    assert main(["dub", "--video", str(wav), "--audio", str(wav), "--out", str(tmp_path / "o.mp4")]) == 2


def test_wider_openings_show_the_persons_own_mouth_from_the_bank(renderer):
    """Opening a closed frame's mouth paints the interior from the video's own open mouth, not drawn teeth."""
    import cv2

    from render import topology as T
    from render.landmarks import MediaPipeFaceMesh
    from render.mouth_bank import MouthBank, bank_frames, lip_gap_iod, mouth_sample
    from render.redub import MouthRedrawer

    mesh = MediaPipeFaceMesh()
    v = np.zeros(len(CHANNELS))
    closed = renderer.render(v)
    v[C["jawOpen"]] = 0.6
    opened = renderer.render(v)
    p_open = mesh.detect(opened)[0].points
    p_closed = mesh.detect(closed)[0].points
    assert bank_frames(np.stack([p_closed, p_open]), np.array([True, True])) == [1]
    # the open frame's interior painted green: whatever shows in a redrawn opening is recognisably its
    marked = opened.copy()
    inner = p_open[T.LIP_INNER_UPPER + T.LIP_INNER_LOWER[::-1][1:-1], :2]
    cv2.fillPoly(marked, [np.round(inner).astype(np.int32)], (0, 255, 0))
    bank = MouthBank([mouth_sample(marked, p_open)])
    assert bank.pick(0.3) is bank.samples[0] and bank.samples[0].gap > 0.15
    mouth = np.array([0.6, 0, 0, 0, 0, 0])
    with_bank = MouthRedrawer(closed, p_closed, bank).redraw(closed, p_closed, mouth)
    drawn = MouthRedrawer(closed, p_closed).redraw(closed, p_closed, mouth)
    face = mesh.detect(with_bank)[0].points
    assert lip_gap_iod(face) > 0.15
    hole = np.zeros(closed.shape[:2], np.uint8)
    cv2.fillPoly(hole, [np.round(face[T.LIP_INNER_UPPER + T.LIP_INNER_LOWER[::-1][1:-1], :2]).astype(np.int32)], 1)
    hole = cv2.erode(hole, np.ones((5, 5), np.uint8)) > 0

    def greenness(img: np.ndarray) -> float:
        f = img[hole].astype(float)
        return float(np.mean(f[:, 1] - 0.5 * (f[:, 0] + f[:, 2])))

    assert greenness(with_bank) > 100 > 20 > greenness(drawn)


def test_motion_export_from_a_video(talking_video, tmp_path, capsys):
    import json

    from talker.cli import main

    video, v = talking_video
    out = tmp_path / "track.json"
    assert main(["motion", "--video", str(video), "--out", str(out)]) == 0
    assert "75 frames at 25 fps; face tracked in 100%" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data and out.stat().st_size > 1000


def test_live_encoder_follows_the_stream_frame_by_frame(renderer):
    """Pushed one frame at a time (no look-ahead), the live encoder reads the same jaw, head and blinks."""
    from render.encoder import LiveEncoder

    track = _round_trip_track(100)
    live = LiveEncoder(FPS)
    rows = np.stack([live.push(renderer.render(row)) for row in track.values])
    live.close()
    after = slice(25, None)  # once its neutral has a second of frames
    for name, r_min in (("jawOpen", 0.9), ("headYaw", 0.95), ("headRoll", 0.95)):
        r = np.corrcoef(track.channel(name)[after], rows[after, C[name]])[0, 1]
        assert r >= r_min, (name, r)
    assert _onsets(rows[:, C["eyeBlinkLeft"]]) == _onsets(track.channel("eyeBlinkLeft"))


def test_live_driver_turns_frames_in_into_portrait_frames_out(talking_video):
    from talker.drive import LiveDriver
    from talker.pipeline import Pipeline
    from talker.portrait import default_portrait_path
    from talker.video import read_frames

    video, v = talking_video
    avatar = Pipeline().prepare_avatar(default_portrait_path().with_name("einstein.jpg"), (256, 256))
    driver = LiveDriver(avatar, FPS)
    out = [driver.push(f) for f in read_frames(video)]
    driver.close()
    assert [f.index for f in out] == list(range(len(v)))
    assert out[0].image.shape == (256, 256, 3)
    # the driver turns its head: so does the portrait (frames differ from the rest pose)
    moved = [float(np.abs(f.image.astype(int) - out[0].image).mean()) for f in out]
    assert max(moved) > 2.0


def test_dub_with_a_recording_alone_takes_its_mouth_from_the_learned_model(talking_video, tmp_path):
    """A recording without a transcript (any language): the learned model reads the mouth from the
    sound; the lips stay shut through its silences and part while it speaks."""
    from render.landmarks import MediaPipeFaceMesh
    from render.mouth_bank import lip_gap_iod
    from talker.dub import DubSettings, dub_video, new_speech
    from talker.video import read_frames

    video, _ = talking_video
    speech, notes = new_speech(media("speech", "goforward.wav"), None)
    assert speech.phones == () and any("learned lip-sync" in n for n in notes)
    out = dub_video(video, speech, tmp_path / "dub.mp4", DubSettings(fit="cut"))
    dub = list(read_frames(out.path))
    mesh = MediaPipeFaceMesh()
    gap = {k: lip_gap_iod(mesh.detect(dub[k])[0].points) for k in (4, 25, 30, 35, 66)}
    # the source's mouth is open 0.2 IOD throughout; the recording is silent before 0.45 s and after 2.3 s
    assert gap[4] < 0.1 and gap[66] < 0.1, gap
    assert min(gap[k] for k in (25, 30, 35)) > 0.08, gap
    with pytest.raises(ValueError, match="recording"):
        new_speech(None, "Hello.", align=True)


@pytest.mark.slow
def test_dub_of_a_filmed_speaker_with_a_recording(tmp_path):
    """A filmed speaker re-voiced with recorded speech: face in every frame, upper face untouched, lips
    shut on the new p/b/m."""
    from audio.align import align_file
    from render.landmarks import MediaPipeFaceMesh
    from render.mouth_bank import lip_gap_iod
    from talker.dub import DubSettings, dub_video
    from talker.video import read_frames

    video = media("video", "hdtf_WDA_KatieHill_000.mp4")
    wav = media("speech", "jfk_inaugural_1961.wav")
    speech = align_file(wav, wav.with_suffix(".txt").read_text().strip()).speech
    out = dub_video(video, speech, tmp_path / "dub.mp4", DubSettings(fit="cut"))
    assert out.face_share == 1.0
    src, dub = list(read_frames(video)), list(read_frames(out.path))
    mesh = MediaPipeFaceMesh()
    for k in range(0, len(dub), 10):
        nose_y = int(mesh.detect(src[k])[0].points[2, 1])
        assert _psnr(dub[k][: nose_y - 4], src[k][: nose_y - 4]) >= 35.0, k
    for p in speech.phones:
        k = int((p.start_s + p.end_s) / 2 * out.fps)
        if p.symbol in ("P", "B", "M") and k < len(dub):
            assert lip_gap_iod(mesh.detect(dub[k])[0].points) < 0.05, (p, k)


def _write_turned(path, frames: list, rotation: int) -> None:  # type: ignore[no-untyped-def]
    """An MP4 storing upright ``frames`` turned, with the display rotation that shows them upright again
    (as a phone stores a video filmed held upright)."""
    import av

    k = int(round(rotation / 90.0)) % 4
    stored = [np.ascontiguousarray(np.rot90(f, -k)) for f in frames]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=int(FPS))
        s.width, s.height, s.pix_fmt = stored[0].shape[1], stored[0].shape[0], "yuv420p"
        s.options = {"crf": "12"}
        s.set_display_rotation(rotation)
        for f in stored:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)


@pytest.mark.parametrize("rotation", [-90, 180])
def test_a_phone_video_stored_turned_is_read_dubbed_and_written_upright(renderer, tmp_path, rotation):
    from render.landmarks import MediaPipeFaceMesh
    from talker.dub import DubSettings, dub_video
    from talker.video import probe_video, read_frames, read_i420

    upright = [renderer.render(np.zeros(len(CHANNELS)))[:, 64:448] for _ in range(4)]  # 384 wide, 512 high
    video = tmp_path / "phone.mp4"
    _write_turned(video, upright, rotation)
    info = probe_video(video)
    assert (info.width, info.height) == (384, 512)
    frames = list(read_frames(video))
    assert frames[0].shape == (512, 384, 3) and _psnr(frames[0], upright[0]) > 35.0
    assert next(iter(read_i420(video))).shape == (768, 384)
    out = dub_video(video, _speech(), tmp_path / "dub.mp4", DubSettings(fit="loop"))
    assert out.face_share == 1.0
    assert (probe_video(out.path).width, probe_video(out.path).height) == (384, 512)
    first = next(iter(read_frames(out.path)))
    face = MediaPipeFaceMesh().detect(first)
    assert face and face[0].points[468, 1] < face[0].points[152, 1]  # the eyes above the chin
