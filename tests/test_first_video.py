"""The first real video, end to end, through the real stages (Piper, mediapipe, warp, x264/AAC)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import media

from audio.text import TextError
from motion.generator import MotionStyle
from render import topology as T
from render.landmarks import NoFaceError
from talker.pipeline import Pipeline, RenderSettings
from talker.portrait import ImageError

FPS = 25.0
SIZE = (256, 256)


def decode(path: Path) -> tuple[list[np.ndarray], dict[str, float]]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0]
        info = {
            "fps": float(v.average_rate),
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "video_s": float(v.duration * v.time_base),
            "audio_s": float(a.duration * a.time_base),
            "vcodec": v.codec_context.name,
            "acodec": a.codec_context.name,
        }
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, info


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, pipeline: Pipeline):
    out = tmp_path_factory.mktemp("clip") / "hello.mp4"
    # a closed-mouth portrait, so silence must look like the portrait itself
    face = media("faces", "liveportrait_s9_mona_lisa.jpg")
    # head still, so the mouth region can be compared with the portrait pixel for pixel
    settings = RenderSettings(
        fps=FPS, size=SIZE, seed=1, crf=10, style=MotionStyle(head_amplitude_deg=0.0, nod_deg=0.0)
    )
    avatar = pipeline.prepare_avatar(face, SIZE)
    speech = pipeline.synthesize("Hello there. Bob bought a big map of the moon.")
    result = pipeline.render_mp4(avatar, speech, out, settings)
    frames, info = decode(out)
    return result, speech, avatar, frames, info


def test_mp4_streams_fps_size_and_durations(clip) -> None:
    result, speech, _, frames, info = clip
    assert info["vcodec"] == "h264" and info["acodec"] == "aac"
    assert info["fps"] == pytest.approx(FPS)
    assert (info["width"], info["height"]) == SIZE
    assert len(frames) == result.n_frames
    assert abs(info["video_s"] - speech.duration_s) <= 0.04 + 1 / FPS
    assert abs(info["audio_s"] - speech.duration_s) <= 0.04 + 1 / FPS
    assert abs(info["video_s"] - info["audio_s"]) <= 0.04


def _mouth_box(avatar) -> tuple[slice, slice]:
    v = avatar.rig.verts
    lips = v[T.LIP_OUTER_UPPER + T.LIP_OUTER_LOWER, :2]
    x0, y0 = lips.min(axis=0)
    x1, y1 = lips.max(axis=0)
    pad = 0.25 * (x1 - x0)
    return slice(int(y0 - pad), int(y1 + pad)), slice(int(x0 - pad), int(x1 + pad))


def test_mouth_moves_while_speaking_and_rests_in_silence(clip) -> None:
    _, speech, avatar, frames, _ = clip
    ys, xs = _mouth_box(avatar)
    portrait = avatar.rig.image[ys, xs].astype(np.float32)
    diff = np.array([np.abs(f[ys, xs].astype(np.float32) - portrait).mean() for f in frames])
    phones = speech.phones
    t = (np.arange(len(frames)) + 0.5) / FPS
    lead_end = phones[0].end_s if phones[0].symbol == "SIL" else 0.0
    tail_start = phones[-1].start_s if phones[-1].symbol == "SIL" else speech.duration_s
    speaking = (t > lead_end + 0.1) & (t < tail_start - 0.1)
    # leave out the ~150 ms in which the lips already anticipate the first sound or settle after the last
    silent = (t < lead_end - 0.15) | (t > tail_start + 0.2)
    assert silent.sum() >= 3 and speaking.sum() >= 20
    # in silence the mouth region is the portrait's, up to the encoder's loss (the floor over all frames)
    floor = diff.min()
    assert floor < 5.0
    assert (diff[silent] - floor).max() < 1.5, (floor, np.where(silent), diff[silent])
    # while speaking it changes clearly, and in many frames
    assert np.percentile(diff[speaking] - floor, 75) > 3.0, diff[speaking]
    # and the opening varies over time (it is not one fixed pose)
    assert diff[speaking].std() > 1.0


def test_bilabials_close_the_lips_in_the_video(clip) -> None:
    """Mid-p/b/m frames look like the closed-mouth portrait; open-vowel frames do not."""
    _, speech, avatar, frames, _ = clip
    ys, xs = _mouth_box(avatar)
    portrait = avatar.rig.image[ys, xs].astype(np.float32)
    diff = np.array([np.abs(f[ys, xs].astype(np.float32) - portrait).mean() for f in frames])
    t = (np.arange(len(frames)) + 0.5) / FPS
    bil = [p for p in speech.phones if p.symbol in ("B", "M", "P")]
    vow = [p for p in speech.phones if p.symbol in ("AA", "AO", "AW") and p.duration_s > 0.06]
    assert bil and vow

    def at(p) -> int:
        return int(np.argmin(np.abs(t - 0.5 * (p.start_s + p.end_s))))

    floor = diff.min()
    closed = np.mean([diff[at(p)] for p in bil]) - floor
    opened = max(diff[at(p)] for p in vow) - floor
    assert opened > 3 * closed + 2.0, (opened, closed)


def test_no_face_gives_a_specific_error(tmp_path: Path, pipeline: Pipeline) -> None:
    from PIL import Image

    img = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    p = tmp_path / "wall.png"
    Image.fromarray(np.stack([img] * 3, axis=2)).save(p)
    with pytest.raises(NoFaceError, match="no face found in .*wall.png"):
        pipeline.prepare_avatar(p)


def test_unreadable_and_non_image_files(tmp_path: Path, pipeline: Pipeline) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with pytest.raises(ImageError, match="notes.png is not a readable image"):
        pipeline.prepare_avatar(bad)
    with pytest.raises(ImageError, match="does not exist"):
        pipeline.prepare_avatar(tmp_path / "missing.jpg")
    trunc = tmp_path / "cut.jpg"
    trunc.write_bytes(media("faces", "obama.jpg").read_bytes()[:2000])
    with pytest.raises(ImageError, match="cut.jpg"):
        pipeline.prepare_avatar(trunc)


def test_a_cut_out_portrait_shows_its_transparent_background_white(tmp_path: Path) -> None:
    from PIL import Image

    from talker.portrait import load_image

    rgb = load_image(media("faces", "obama.jpg"))
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, : rgb.shape[1] // 6] = 0  # a transparent strip, its stored colour black
    rgb = rgb.copy()
    rgb[alpha == 0] = 0
    p = tmp_path / "cutout.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(p)
    got = load_image(p)
    assert got.shape == rgb.shape
    assert (got[alpha == 0] == 255).all()
    assert np.array_equal(got[alpha == 255], rgb[alpha == 255])


@pytest.mark.parametrize("text", ["", "   \n\t ", "?!...", "x" * 20001])
def test_empty_or_unspeakable_text(text: str, pipeline: Pipeline) -> None:
    with pytest.raises(TextError):
        pipeline.synthesize(text)


def test_cli_renders_default_portrait_and_reports_errors(tmp_path: Path) -> None:
    out = tmp_path / "cli.mp4"
    exe = [sys.executable, "-m", "talker.cli"]
    r = subprocess.run(
        exe + ["render", "--text", "Hi.", "--out", str(out), "--size", "128", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet, and mediapipe's and TF Lite's log lines hidden without --verbose
    _, info = decode(out)
    assert (info["width"], info["height"]) == (128, 128)
    r = subprocess.run(
        exe + ["render", "--text", "  ", "--out", str(tmp_path / "x.mp4")], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 2 and "text is empty" in r.stderr
    r = subprocess.run(
        exe + ["render", "--text", "Hi", "--face", str(tmp_path / "nope.png"), "--out", str(tmp_path / "y.mp4")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "nope.png does not exist" in r.stderr
    assert not (tmp_path / "y.mp4").exists()
    # a recording without its transcript: the learned model by default; --align recognises its words
    # (English) and tells the user what was heard
    wav = str(media("speech", "goforward.wav"))
    r = subprocess.run(
        exe + ["render", "--audio", wav, "--out", str(tmp_path / "z.mp4"), "--size", "128"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "note: mouth driven by the learned lip-sync model" in r.stdout
    r = subprocess.run(
        exe + ["render", "--audio", wav, "--align", "--out", str(tmp_path / "z.mp4"), "--size", "128"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "note: no transcript: the words were recognised as 'go forward ten meters'" in r.stdout


def test_render_from_a_recording_keeps_its_length_and_moves_the_mouth(tmp_path: Path, pipeline: Pipeline) -> None:
    wav = media("speech", "librivox_ss01_0880.wav")
    transcript = media("speech", "librivox_ss01_0880.txt").read_text()
    out = tmp_path / "rec.mp4"
    settings = RenderSettings(size=(128, 128), seed=2)
    done = pipeline.render_audio(wav, out, media("faces", "liveportrait_s9_mona_lisa.jpg"), transcript, settings)
    assert done.notes == ()  # aligned to its transcript
    frames, info = decode(out)
    import wave

    with wave.open(str(wav)) as w:
        dur = w.getnframes() / w.getframerate()
    assert abs(info["audio_s"] - dur) <= 0.04 + 1 / FPS
    assert abs(info["video_s"] - info["audio_s"]) <= 0.04
    stack = np.stack([f.astype(np.float32) for f in frames])
    assert stack.std(axis=0).max() > 20  # something (the mouth) moves a lot
