"""Video avatars (``talker avatar create``, ``talker render --avatar``) on clips the tests render themselves
from a bundled portrait: a person listening (head moving, blinking, one short laugh with the mouth open)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import media, write_video

from audio.types import SILENCE, Phone, Speech
from motion.types import CHANNEL_INDEX as C
from motion.types import CHANNELS

FPS = 25.0
SIZE = (320, 320)


def _listening(n: int) -> np.ndarray:
    """Motion rows of someone listening: slow head sway, blinks, a short laugh (mouth open) at 2.4 s."""
    t = np.arange(n) / FPS
    v = np.zeros((n, len(CHANNELS)), np.float32)
    v[:, C["headYaw"]] = 5 * np.sin(2 * np.pi * t / 3.0)
    v[:, C["headPitch"]] = 2 * np.sin(2 * np.pi * t / 1.5)
    for b in (25, 80, 130):
        if b + 3 <= n:
            v[b - 2 : b + 3, C["eyeBlinkLeft"]] = v[b - 2 : b + 3, C["eyeBlinkRight"]] = [0.4, 0.9, 1, 0.9, 0.4]
    v[60:68, C["jawOpen"]] = [0.2, 0.4, 0.6, 0.65, 0.65, 0.6, 0.4, 0.2]
    v[:, C["mouthClose"]] = np.where(v[:, C["jawOpen"]] > 0, 0.0, 1.0)
    return v


@pytest.fixture(scope="module")
def portrait_renderer():
    from render.warp import WarpRenderer
    from talker.pipeline import Pipeline

    return WarpRenderer(Pipeline().prepare_avatar(media("faces/obama.jpg"), SIZE).rig)


@pytest.fixture(scope="module")
def clip(portrait_renderer, tmp_path_factory) -> Path:
    frames = [portrait_renderer.render(row) for row in _listening(160)]
    return write_video(tmp_path_factory.mktemp("clip") / "listening.mp4", frames, marks=False)


@pytest.fixture(scope="module")
def prepared(clip, tmp_path_factory):
    from talker.video_avatar import prepare_video_avatar

    data = tmp_path_factory.mktemp("data")
    info = prepare_video_avatar(clip, "obama", data, size=SIZE, framing="source")
    return data, info


def _speech() -> Speech:
    """'ma pa ba ma' with pauses around: phones and a voiced signal (no TTS needed)."""
    sr = 16000
    seq = [(SILENCE, 0.6)] + [(s, d) for c in "MPBM" for s, d in ((c, 0.1), ("AA", 0.28))] + [(SILENCE, 1.0)]
    phones, t, parts = [], 0.0, []
    for sym, d in seq:
        phones.append(Phone(t, t + d, sym))
        n = int(round(d * sr))
        k = np.arange(n) / sr
        amp = 0.0 if sym == SILENCE else (0.3 if sym == "AA" else 0.05)
        parts.append((amp * np.sign(np.sin(2 * np.pi * 140 * k))).astype(np.float32))
        t += d
    return Speech(np.concatenate(parts), sr, tuple(phones))


def _loop_frames(folder: Path) -> list[np.ndarray]:
    from talker.video import read_frames

    return list(read_frames(folder / "loop.mp4"))


def test_prepare_caches_a_loop_the_landmarks_and_the_persons_own_mouths(prepared):
    data, info = prepared
    folder = data / "avatars" / "obama"
    assert {p.name for p in folder.iterdir()} == {"avatar.json", "loop.mp4", "track.npz", "bank.npz"}
    assert info.size == SIZE and info.fps == FPS and info.idle_mouth == "own"
    assert info.n_frames >= 0.6 * 160 - 10  # most of the clip loops
    assert info.bank >= 1  # the laugh's open mouth is kept
    assert info.bytes == sum(p.stat().st_size for p in folder.iterdir() if p.name != "avatar.json")
    assert json.loads((folder / "avatar.json").read_text())["n_frames"] == info.n_frames
    assert len(_loop_frames(folder)) == info.n_frames


def test_the_loop_comes_round_without_a_jump(prepared, clip):
    """The step from the loop's last frame to its first is no larger than the clip's own frame-to-frame
    steps (99th percentile), at a quarter of the size (the motion a viewer sees, not the codec's grain)."""
    import cv2

    from talker.video import read_frames

    def small(f: np.ndarray) -> np.ndarray:
        return cv2.resize(f, (SIZE[0] // 4, SIZE[1] // 4), interpolation=cv2.INTER_AREA).astype(np.float32)

    data, _ = prepared
    frames = [small(f) for f in _loop_frames(data / "avatars" / "obama")]
    source = [small(f) for f in read_frames(clip)]
    own = [float(np.abs(b - a).mean()) for a, b in zip(source, source[1:])]
    seam = float(np.abs(frames[0] - frames[-1]).mean())
    assert seam <= np.percentile(own, 99), (seam, np.percentile(own, 99))


def test_render_keeps_silent_frames_and_closes_the_lips_on_bilabials(prepared, tmp_path):
    from render.landmarks import MediaPipeFaceMesh
    from render.mouth_bank import lip_gap_iod
    from talker.avatar_player import load_video_avatar
    from talker.pipeline import Pipeline, RenderSettings
    from talker.video import read_frames

    data, info = prepared
    avatar = load_video_avatar("obama", data)
    speech = _speech()
    out = tmp_path / "said.mp4"
    result = Pipeline().render_mp4(avatar, speech, out, RenderSettings(fps=avatar.fps, size=avatar.size))
    assert result.n_frames == int(np.ceil(speech.duration_s * FPS - 1e-9))
    said = list(read_frames(out))
    loop = _loop_frames(data / "avatars" / "obama")
    mesh = MediaPipeFaceMesh()
    still: list[float] = []
    moved: list[float] = []
    for k, frame in enumerate(said):
        j = k % info.n_frames
        lips = avatar.points[j, [61, 291, 0, 17], :2]
        (x0, y0), (x1, y1) = lips.min(axis=0).astype(int) - 6, lips.max(axis=0).astype(int) + 6
        diff = float(np.abs(frame[y0:y1, x0:x1].astype(np.float32) - loop[j][y0:y1, x0:x1]).mean())
        t = (k + 0.5) / FPS
        # silent: the clip's own mouth (up to the output's encode and marks); speaking: redrawn
        (still if t < 0.5 or t > speech.duration_s - 0.4 else moved).append(diff)
    assert max(still) < 4.0 < max(moved), (max(still), max(moved))
    for p in speech.phones:
        if p.symbol == SILENCE:
            continue
        k = int((p.start_s + p.end_s) / 2 * FPS)
        face = mesh.detect(said[k])
        assert face, f"no face in frame {k}"
        gap = lip_gap_iod(face[0].points)
        # (a shut mouth reads up to 0.075 IOD apart: its points moved by the encodes' marks and x264 threads)
        if p.symbol in "MPB":
            assert gap < 0.1, (p, k, gap)
        else:
            assert gap > 0.15, (p, k, gap)


def test_the_idle_loop_plays_on_between_utterances(prepared):
    """Each render call is the loop's next frame, round and round; silent rows give the stored frames exactly."""
    from talker.avatar_player import load_video_avatar
    from talker.video import read_i420

    data, info = prepared
    renderer = load_video_avatar(data / "avatars" / "obama").frame_renderer()
    rest = np.zeros(len(CHANNELS), np.float32)
    rest[C["mouthClose"]] = 1.0
    loop = list(read_i420(data / "avatars" / "obama" / "loop.mp4"))
    for k in range(info.n_frames + 5):
        got = renderer.render_i420(rest)
        assert renderer.frame_index == k % info.n_frames
        assert np.array_equal(got, loop[k % info.n_frames]), k


def test_cli_create_list_show_render_delete(clip, tmp_path, capfd):
    from talker.cli import main
    from talker.video import probe_video

    data = str(tmp_path / "data")
    assert main(["avatar", "--data-dir", data, "create", "--video", str(clip), "--name", "me", "--size", "256",
                 "--quiet"]) == 0  # fmt: skip
    assert main(["avatar", "--data-dir", data, "list"]) == 0
    assert "me\t256x256" in capfd.readouterr().out
    assert main(["avatar", "--data-dir", data, "show", "me"]) == 0
    assert json.loads(capfd.readouterr().out)["size"] == [256, 256]
    out = tmp_path / "me.mp4"
    assert main(["render", "--avatar", "me", "--data-dir", data, "--text", "Hello.", "--out", str(out), "--quiet"]) == 0
    assert (probe_video(out).width, probe_video(out).height) == (256, 256)
    # a second avatar of the same name is refused; the first is kept
    assert main(["avatar", "--data-dir", data, "create", "--video", str(clip), "--name", "me", "--quiet"]) == 2
    assert "exists" in capfd.readouterr().err
    assert main(["render", "--avatar", "me", "--face", str(clip), "--data-dir", data, "--text", "Hi"]) == 2
    assert main(["avatar", "--data-dir", data, "delete", "me"]) == 0
    assert main(["render", "--avatar", "me", "--data-dir", data, "--text", "Hi", "--quiet"]) == 2
    assert "no video avatar named 'me'" in capfd.readouterr().err


def test_bad_clips_get_specific_errors(portrait_renderer, tmp_path):
    from render.face_track import VideoFaceError
    from talker.video_avatar import VideoAvatarError, prepare_video_avatar

    face = portrait_renderer.render(np.zeros(len(CHANNELS), np.float32))
    short = write_video(tmp_path / "short.mp4", [face] * 75, marks=False)
    with pytest.raises(VideoAvatarError, match=r"lasts 3\.0 s; a video avatar needs a clip of 5 s to 3 min"):
        prepare_video_avatar(short, "a", tmp_path)
    blank = write_video(tmp_path / "blank.mp4", [np.full_like(face, 80)] * 130, marks=False)
    with pytest.raises(VideoFaceError, match="no face found"):
        prepare_video_avatar(blank, "b", tmp_path)
    # the face only briefly: 2 s of face, then an empty room
    gone = write_video(tmp_path / "gone.mp4", [face] * 50 + [np.full_like(face, 80)] * 100, marks=False)
    with pytest.raises(VideoAvatarError, match=r"at most 2\.0 s .* 100 frames without a face"):
        prepare_video_avatar(gone, "c", tmp_path)
    with pytest.raises(VideoAvatarError, match="avatar name"):
        prepare_video_avatar(short, "../x", tmp_path)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(ValueError, match="junk.mp4"):
        prepare_video_avatar(junk, "d", tmp_path)
    assert not (tmp_path / "avatars").exists() or not any((tmp_path / "avatars").iterdir())


def test_a_cut_keeps_the_longest_shot_and_says_so(portrait_renderer, tmp_path):
    from render.warp import WarpRenderer
    from talker.pipeline import Pipeline
    from talker.video_avatar import prepare_video_avatar

    other = WarpRenderer(Pipeline().prepare_avatar(media("faces/astronaut_eileen_collins.png"), SIZE).rig)
    rows = _listening(200)
    frames = [other.render(r) for r in rows[:50]] + [portrait_renderer.render(r) for r in rows[50:]]
    info = prepare_video_avatar(write_video(tmp_path / "cut.mp4", frames, marks=False), "cut", tmp_path, size=SIZE)
    assert info.span_s[0] >= 2.0 - 1e-6
    assert any("1 cut(s)" in n for n in info.notes), info.notes


def test_python_api_renders_a_video_avatar(prepared, tmp_path):
    import talker

    data, info = prepared
    result = talker.render("Hello.", tmp_path / "api.mp4", avatar="obama", data_dir=data)
    assert result.fps == info.fps and result.n_frames > 10
    with pytest.raises(ValueError, match="not both"):
        talker.render("Hello.", tmp_path / "x.mp4", face=media("faces/obama.jpg"), avatar="obama", data_dir=data)


def test_a_talking_clip_has_its_mouth_shut_into_the_loop(portrait_renderer, tmp_path):
    """A clip whose mouth moves as in speech is stored with the mouth shut, and speech opens it again."""
    from render.landmarks import MediaPipeFaceMesh
    from render.mouth_bank import lip_gap_iod
    from talker.avatar_player import load_video_avatar
    from talker.video_avatar import prepare_video_avatar

    rows = _listening(140)
    t = np.arange(140) / FPS
    rows[:, C["jawOpen"]] = np.clip(0.25 + 0.25 * np.sin(2 * np.pi * 2.0 * t), 0.0, 1.0)
    rows[:, C["mouthClose"]] = 0.0
    clip = write_video(tmp_path / "talking.mp4", [portrait_renderer.render(r) for r in rows], marks=False)
    info = prepare_video_avatar(clip, "talker", tmp_path, size=SIZE, framing="source")
    assert info.idle_mouth == "shut" and info.bank >= 2
    mesh = MediaPipeFaceMesh()
    loop = _loop_frames(tmp_path / "avatars" / "talker")
    gaps = [lip_gap_iod(mesh.detect(f)[0].points) for f in loop[::7]]
    assert max(gaps) < 0.06, gaps
    renderer = load_video_avatar("talker", tmp_path).frame_renderer()
    aa = np.zeros(len(CHANNELS), np.float32)
    aa[C["jawOpen"]] = 0.6
    for _ in range(4):  # the redraw fades in over a few frames
        frame = renderer.render(aa)
    assert lip_gap_iod(mesh.detect(frame)[0].points) > 0.12


def test_the_loop_plays_at_the_sessions_frame_rate(prepared):
    """A 25 fps loop played at 30 fps shows some frames twice, at 20 fps skips some: its own pace either way."""
    from talker.avatar_player import load_video_avatar

    data, info = prepared
    rest = np.zeros(len(CHANNELS), np.float32)
    rest[C["mouthClose"]] = 1.0
    for fps, n in ((30.0, 60), (20.0, 40)):
        renderer = load_video_avatar(data / "avatars" / "obama").frame_renderer(fps=fps)
        shown = []
        for _ in range(n):
            renderer.render_i420(rest)
            shown.append(renderer.frame_index)
        # two seconds of rendering cover two seconds of the loop
        assert shown[-1] == int((n - 1) * FPS / fps) % info.n_frames, (fps, shown)
        assert all(b - a in (0, 1, 2) for a, b in zip(shown, shown[1:]))
