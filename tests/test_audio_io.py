"""audio.io: decoding any container/rate/channel count to mono float32, resampling, clear errors."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import media

from audio.io import AudioError, load_audio, resample


def _write(path: Path, codec: str, rate: int, left: np.ndarray, right: np.ndarray | None = None) -> Path:
    """Encode float samples with PyAV (stereo when ``right`` is given)."""
    layout = "stereo" if right is not None else "mono"
    planes = np.stack([left, right] if right is not None else [left]).astype(np.float32)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
        frame.sample_rate = rate
        rs = av.AudioResampler(format=s.codec_context.format.name, layout=layout, rate=rate)
        for f in rs.resample(frame):
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path


def _tone(rate: int, hz: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[int(np.argmax(spec))])


@pytest.mark.parametrize(
    "name,codec,rate,stereo",
    [
        ("a.wav", "pcm_s16le", 48000, True),
        ("b.mp3", "libmp3lame", 44100, True),
        ("c.flac", "flac", 22050, False),
        ("d.ogg", "libopus", 48000, True),
        ("e.m4a", "aac", 44100, True),
        ("f.wav", "pcm_s16le", 8000, False),
    ],
)
def test_formats_rates_and_channels_decode_to_mono(tmp_path: Path, name: str, codec: str, rate: int, stereo: bool):
    tone = _tone(rate, 440.0, 1.0)
    right = np.zeros_like(tone) if stereo else None  # the mean of a tone and silence is half the tone
    path = _write(tmp_path / name, codec, rate, tone, right)
    x, sr = load_audio(path)
    assert sr == rate and x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / sr - 1.0) < 0.06  # codec priming/padding only
    peak = float(np.max(np.abs(x[len(x) // 4 : -len(x) // 4])))
    assert peak == pytest.approx(0.25 if stereo else 0.5, rel=0.1)
    assert _dominant_hz(x, sr) == pytest.approx(440.0, abs=3.0)
    y, sr16 = load_audio(path, sample_rate=16000)
    assert sr16 == 16000 and abs(len(y) / 16000 - 1.0) < 0.06
    assert _dominant_hz(y, 16000) == pytest.approx(440.0, abs=3.0)


def test_real_speech_at_48k_and_its_resampled_copy(tmp_path: Path):
    from scipy.signal import resample_poly

    # a public-domain recording written as a recorder writes 48 kHz speech: 16-bit PCM WAV
    x16, sr16 = load_audio(media("speech", "librivox_ss01_0880.wav"))
    assert sr16 == 16000
    pcm = np.clip(np.round(resample_poly(x16, 3, 1) * 32767), -32768, 32767).astype("<i2")
    path = tmp_path / "speech_48k.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(pcm.tobytes())
    x, sr = load_audio(path)
    assert sr == 48000 and len(x) == len(pcm)
    y, sr2 = load_audio(path, sample_rate=16000)
    z = resample(x, 48000, 16000)
    assert sr2 == 16000 and abs(len(y) - len(z)) <= 2
    n = min(len(y), len(z), len(x16))
    assert float(np.corrcoef(y[:n], z[:n])[0, 1]) > 0.98  # PyAV's and scipy's resamplers agree
    assert float(np.corrcoef(y[:n], x16[:n])[0, 1]) > 0.98  # ... and give back the recording


def test_resample_keeps_pitch_and_removes_aliases():
    x = _tone(44100, 1000.0, 0.5)
    y = resample(x, 44100, 16000)
    assert len(y) == 8000 and y.dtype == np.float32
    assert _dominant_hz(y, 16000) == pytest.approx(1000.0, abs=3.0)
    hi = _tone(48000, 7000.0, 0.5)  # above the 4 kHz Nyquist limit of 8 kHz audio
    assert float(np.sqrt(np.mean(resample(hi, 48000, 8000) ** 2))) < 0.01
    assert np.array_equal(resample(x, 44100, 44100), x)
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0, 16000)


def test_errors_name_the_file(tmp_path: Path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="not found.*nope.wav"):
        load_audio(missing)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.*empty.mp3"):
        load_audio(empty)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    with pytest.raises(AudioError, match="junk.wav"):
        load_audio(junk)
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 100)
    with pytest.raises(AudioError, match="notes.mp3"):
        load_audio(text)
    zero = tmp_path / "zero.wav"
    with wave.open(str(zero), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    with pytest.raises(AudioError, match="zero length.*|no audio samples"):
        load_audio(zero)
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_over_long_file_is_refused_with_the_limit(tmp_path: Path):
    path = _write(tmp_path / "long.flac", "flac", 16000, _tone(16000, 300.0, 3.0))
    with pytest.raises(AudioError, match=r"long.flac.*limit is 2 s"):
        load_audio(path, max_duration_s=2.0)
    x, _ = load_audio(path, max_duration_s=3.0)
    assert len(x) == 48000


def test_truncated_mp3_keeps_what_decodes(tmp_path: Path):
    full = _write(tmp_path / "full.mp3", "libmp3lame", 44100, _tone(44100, 440.0, 2.0))
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    x, sr = load_audio(cut)
    assert 0.7 < len(x) / sr < 1.3
