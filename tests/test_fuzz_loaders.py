"""Fuzzing the loaders a client's bytes reach: images (upload checks, decoding, the CLI loader), audio
and text. Whatever the input, the only way out is the loader's own error with a message, never
another exception. ``-m slow`` runs many more cases."""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from audio.io import AudioError, load_audio
from audio.text import TextError, clean_text
from server.portraits import UploadError, prepare_upload
from talker.portrait import ImageError, load_image

CASES = int(os.environ.get("TALKER_FUZZ_CASES", "60"))
FUZZ = settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _image_bytes(fmt: str, mode: str = "RGB", size: tuple[int, int] = (48, 40)) -> bytes:
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


SEEDS = [_image_bytes("PNG"), _image_bytes("JPEG"), _image_bytes("WEBP"), _image_bytes("GIF", "P"),
         _image_bytes("BMP"), _image_bytes("TIFF"), _image_bytes("PNG", "LA"), _image_bytes("PNG", "I;16")]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid file with bytes flipped, cut short, or spliced: the inputs that reach a decoder's corners."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        data += draw(st.binary(max_size=64))
    return bytes(data)


def _checked_and_decoded(data: bytes) -> None:
    try:
        image = prepare_upload(data, 1_000_000, 4_000_000)
    except UploadError as e:
        assert e.status in (400, 413, 415, 422) and str(e)
        return
    rgb, info = image.rgb, image.info
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert (info.width, info.height) in ((rgb.shape[1], rgb.shape[0]), (rgb.shape[0], rgb.shape[1]))


@FUZZ
@given(st.one_of(mutated(SEEDS), st.binary(max_size=2048)))
def test_upload_checks_and_decoding_never_crash(data: bytes) -> None:
    _checked_and_decoded(data)


@FUZZ
@given(mutated(SEEDS))
def test_the_cli_image_loader_never_crashes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("img") / "face.png"
    path.write_bytes(data)
    try:
        rgb = load_image(path)
    except ImageError as e:
        assert str(path) in str(e)
        return
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3


def _wav_bytes(seconds: float = 0.3, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _encoded(fmt: str, codec: str) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=16000)
        stream.layout = "mono"  # type: ignore[union-attr]
        fmt = stream.format.name  # type: ignore[union-attr]
        chunk = 1152 if codec == "libmp3lame" else 1024
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=16000)
        for start in range(0, 4608, chunk):
            samples = (0.3 * np.sin((np.arange(chunk) + start) / 8.0)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = 16000
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


AUDIO_SEEDS = [_wav_bytes(), _encoded("flac", "flac"), _encoded("mp3", "libmp3lame"), _encoded("adts", "aac")]


@FUZZ
@given(st.one_of(mutated(AUDIO_SEEDS), st.binary(max_size=1024)))
def test_the_audio_loader_never_crashes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("aud") / "speech.bin"
    path.write_bytes(data)
    try:
        samples, rate = load_audio(path, 16000)
    except AudioError as e:
        assert str(e)
        return
    assert rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1 and np.isfinite(samples).all()


@FUZZ
@given(st.text(max_size=400))
def test_text_cleaning_never_crashes(text: str) -> None:
    try:
        out = clean_text(text)
    except TextError as e:
        assert str(e)
        return
    assert out and out == out.strip() and any(c.isalnum() for c in out)


def test_the_seed_files_themselves_load(tmp_path: Path) -> None:
    for data in SEEDS:
        _checked_and_decoded(data)
    for data in AUDIO_SEEDS:
        p = tmp_path / "a.bin"
        p.write_bytes(data)
        samples, _ = load_audio(p, 16000)
        assert len(samples) > 1000
