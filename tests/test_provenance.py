"""Provenance: outputs carry an invisible mark in pixels and audio and a C2PA manifest; ``talker verify``
finds them after the file is re-encoded and resized, and finds nothing in media that was never marked."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import media

ID = 0x5EC0_0A11


def _moving_clip(n: int = 25) -> list[np.ndarray]:
    """``n`` 512x512 RGB frames panning slowly over a real portrait (so the encoder has motion)."""
    img = cv2.cvtColor(cv2.imread(str(media("faces", "obama.jpg"))), cv2.COLOR_BGR2RGB)
    side = max(560, 512 + n)
    big = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(big[i : i + 512, i : i + 512]) for i in range(n)]


def _speech() -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(media("speech", "librivox_ss01_0880.wav")), dtype="float32")
    return x, sr


def test_pixel_mark_is_invisible_by_psnr_and_survives_reencode_and_resize() -> None:
    from benchmarks.bench_provenance import decode_video, encode_h264, resize_half
    from render.watermark import PixelMarker, detect_pixels

    clip = _moving_clip()
    marker = PixelMarker(ID)
    marked = [marker.mark(f) for f in clip]
    mse = np.mean([(m.astype(np.float32) - f) ** 2 for m, f in zip(marked, clip, strict=True)])
    assert 10 * np.log10(255**2 / mse) >= 42.0
    seen = resize_half(decode_video(encode_h264(marked, bitrate=500_000)))
    found = detect_pixels(seen)
    assert found.found and found.output_id in (ID, None), found  # (a second of frames may not spell the id)
    plain = detect_pixels(resize_half(decode_video(encode_h264(clip, bitrate=500_000))))
    assert not plain.found, plain


def test_pixel_mark_survives_crop_and_grayscale() -> None:
    from benchmarks.bench_provenance import crop10, grey
    from render.watermark import PixelMarker, detect_pixels

    marker = PixelMarker(ID)
    marked = [marker.mark(f) for f in _moving_clip(10)]
    found = detect_pixels(grey(crop10(marked)))
    assert found.found and found.output_id == ID, found


@pytest.mark.parametrize("scale", [0.7, 480 / 512, 1.4])
def test_pixel_mark_survives_a_resize_by_any_factor(scale: float) -> None:
    from render.watermark import PixelMarker, detect_pixels

    frame = PixelMarker(ID).mark(_moving_clip(1)[0])
    seen = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = detect_pixels([seen])
    assert found.found and found.output_id in (ID, None), found


def test_unmarked_stills_and_their_crops_are_not_flagged() -> None:
    from render.watermark import detect_pixels

    rng = np.random.default_rng(1)
    paths = [p for p in sorted(media().rglob("*")) if p.suffix.lower() in (".png", ".jpg")]
    assert paths
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        h, w = img.shape
        views = [img]
        for _ in range(3):
            ch, cw = int(h * rng.uniform(0.5, 1)), int(w * rng.uniform(0.5, 1))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            views.append(img[y0 : y0 + ch, x0 : x0 + cw])
        for v in views:
            d = detect_pixels([v])
            assert not d.found, (p.name, v.shape, d)


def test_audio_mark_is_inaudible_by_snr_and_survives_resampling_to_16k() -> None:
    from scipy.signal import resample_poly

    from audio.watermark import detect_audio, mark_audio

    x, sr = _speech()
    x48 = resample_poly(x, 3, 1).astype(np.float32)
    y = mark_audio(x48, 48_000, ID)
    assert 10 * np.log10(np.sum(x48**2) / np.sum((y - x48) ** 2)) >= 30.0
    back = resample_poly(y, 1, 3).astype(np.float32)
    d = detect_audio(back, 16_000)
    assert d.found and d.output_id == ID, d
    assert not detect_audio(x, sr).found


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(marked MP4, the same content written with marks off), 2 s of a moving portrait with speech."""
    from talker.mp4 import Mp4Writer

    folder = tmp_path_factory.mktemp("prov")
    x, sr = _speech()
    clip = _moving_clip(50)
    out = []
    for name, marks in (("marked.mp4", True), ("plain.mp4", False)):
        path = folder / name
        with pytest.MonkeyPatch.context() as mp, Mp4Writer(path, 512, 512, 25, sr, marks=marks, output_id=ID) as w:
            mp.setenv("TALKER_DATA_DIR", str(folder))  # (the local signing certificate goes there)
            step = sr // 25
            for k, frame in enumerate(clip):
                w.write_audio(x[k * step : (k + 1) * step])
                w.write_video(frame)
        out.append(path)
    return out[0], out[1]


def _verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    from talker.cli import main

    rc = main(["verify", "--json", str(path)])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def test_verify_reports_every_mark_of_a_written_mp4(
    written: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TALKER_DATA_DIR", str(tmp_path))
    rc, rep = _verify(written[0], capsys)
    assert rc == 0
    assert rep["pixels"]["found"] and rep["pixels"]["output_id"] == f"{ID:08x}"
    assert rep["audio"]["found"] and rep["audio"]["output_id"] == f"{ID:08x}"
    assert rep["manifest"]["state"] == "valid"
    assert rep["manifest"]["source_type"].endswith("trainedAlgorithmicMedia")


def test_verify_exit_codes_for_unmarked_and_unreadable_files(
    written: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc, rep = _verify(written[1], capsys)
    assert rc == 1
    assert not rep["pixels"]["found"] and not rep["audio"]["found"] and rep["manifest"]["state"] == "absent"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    assert _verify(junk, capsys)[0] == 2
    assert _verify(tmp_path / "missing.wav", capsys)[0] == 2
    rc, rep = _verify(media("speech", "jfk_inaugural_1961.wav"), capsys)
    assert rc == 1 and rep["kind"] == "audio"


def test_a_tampered_mp4_has_an_invalid_manifest(written: tuple[Path, Path], tmp_path: Path) -> None:
    from talker.provenance import read_manifest

    data = bytearray(written[0].read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of the media data
    bad = tmp_path / "tampered.mp4"
    bad.write_bytes(bytes(data))
    assert read_manifest(bad).state == "invalid"


def test_a_stripped_and_reencoded_copy_is_still_found(
    written: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Re-encoding drops the manifest; the watermarks carry on."""
    from benchmarks.bench_provenance import decode_video, encode_h264, resize_half

    copy = tmp_path / "copy.mp4"
    copy.write_bytes(encode_h264(resize_half(decode_video(written[0].read_bytes())), bitrate=500_000))
    rc, rep = _verify(copy, capsys)
    assert rc == 0
    assert rep["manifest"]["state"] == "absent" and rep["pixels"]["found"]


def test_talker_render_output_carries_both_marks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from talker.cli import main

    monkeypatch.setenv("TALKER_DATA_DIR", str(tmp_path))
    out = tmp_path / "r.mp4"
    assert main(["render", "--text", "This face was made by a machine.", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    rc, rep = _verify(out, capsys)
    assert rc == 0
    assert rep["pixels"]["found"] and rep["audio"]["found"] and rep["manifest"]["state"] == "valid"
    # the id is not always readable from a few seconds (a still portrait, a short voice), but never a wrong one
    ids = {rep[k]["output_id"] for k in ("pixels", "audio")} - {None}
    assert len(ids) <= 1


def test_post_verify_reports_the_marks_of_an_upload(written: tuple[Path, Path], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.settings import Settings
    from server.testing import shared_engine

    with TestClient(create_app(Settings(data_dir=tmp_path, job_workers=0), engine=shared_engine())) as client:
        r = client.post("/verify", files={"file": ("clip.mp4", written[0].read_bytes(), "video/mp4")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["found"] and body["manifest"] == "valid" and body["pixels"]["output_id"] == f"{ID:08x}"
        r = client.post("/verify", files={"file": ("clip.mp4", written[1].read_bytes(), "video/mp4")})
        assert r.status_code == 200 and not r.json()["found"]
        r = client.post("/verify", files={"file": ("clip.mp4", b"junk" * 50, "video/mp4")})
        assert r.status_code == 400 and "detail" in r.json()


def test_frames_received_over_webrtc_carry_the_mark(tmp_path: Path) -> None:
    """A recording of a live session (VP8 and Opus over loopback WebRTC) is found by its frames and
    by its audio, and the session's label shows."""
    import asyncio

    from audio.watermark import detect_audio
    from render.watermark import detect_pixels
    from server.settings import Settings
    from server.testing import LiveServer, shared_engine
    from tools.rtc_client import AvatarClient

    async def record(url: str) -> tuple[list[np.ndarray], np.ndarray]:
        c = AvatarClient(url, keep_luma=True)
        await c.connect()
        await asyncio.wait_for(c.connected.wait(), 20)
        await c.say("Papa bought a map, and we will find the bay by noon.")
        await c.wait_frames(125, timeout=60)
        await c.close()
        return c.received.luma[10:60], np.concatenate(c.received.pcm)

    settings = Settings(data_dir=tmp_path, max_sessions=1, job_workers=0, label="AI-generated")
    with LiveServer(settings, shared_engine()) as srv:
        frames, pcm = asyncio.run(record(srv.url))
    d = detect_pixels(frames)
    assert d.found, d
    heard = detect_audio(pcm.astype(np.float32) / 32768.0, 48_000)
    assert heard.found, heard
    box = frames[-1][-24:-8, 8:60]  # the label's dark box, bottom left
    assert np.median(box) < 60, np.median(box)


def test_a_label_is_drawn_in_the_corner_and_the_marks_stay(tmp_path: Path) -> None:
    from render.watermark import detect_pixels
    from talker.mp4 import Mp4Writer
    from talker.provenance import Label

    with pytest.raises(ValueError, match="label"):
        Label("   ")
    path = tmp_path / "labelled.mp4"
    clip = _moving_clip(10)
    with (
        pytest.MonkeyPatch.context() as mp,
        Mp4Writer(path, 512, 512, 25, 16000, label="AI-generated", output_id=ID) as w,
    ):
        mp.setenv("TALKER_DATA_DIR", str(tmp_path))
        for frame in clip:
            w.write_audio(np.zeros(640, np.float32))
            w.write_video(frame)
    from benchmarks.bench_provenance import decode_video

    frames = decode_video(path.read_bytes())
    corner = frames[0][-40:, :200].astype(np.float32) - clip[0][-40:, :200]
    assert np.abs(corner).mean() > 20  # the label changed the bottom-left corner
    middle = frames[0][200:300, 200:300].astype(np.float32) - clip[0][200:300, 200:300]
    assert np.abs(middle).mean() < 5  # and nothing else
    assert detect_pixels(frames).found


def test_a_signed_mp4_keeps_the_usual_file_mode(written: tuple[Path, Path]) -> None:
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o666 & ~umask, "readable by others like any file written"
