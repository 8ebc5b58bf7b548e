"""Frame-rate features: loudness, pitch, voicing, onsets."""

from __future__ import annotations

import numpy as np
import pytest

from audio.features import frame_count, frame_features, loudness_db


def tone(f0: float, dur: float, sr: int = 16000, harmonics: int = 6) -> np.ndarray:
    t = np.arange(int(dur * sr)) / sr
    return sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, harmonics + 1)).astype(np.float32) * 0.2


@pytest.mark.parametrize("f0", [90.0, 140.0, 220.0, 330.0])
def test_pitch_of_a_harmonic_tone(f0: float) -> None:
    sr = 16000
    x = np.concatenate([np.zeros(sr // 2, np.float32), tone(f0, 1.0, sr)])
    feats = frame_features(x, sr, 25.0)
    assert len(feats.f0_hz) == frame_count(len(x), sr, 25.0)
    silent, voiced = feats.f0_hz[:10], feats.f0_hz[15:35]
    assert (silent == 0).all() and (feats.voicing[:10] < 0.1).all()
    assert np.median(voiced) == pytest.approx(f0, rel=0.03)  # no octave errors
    assert feats.onset[11:15].max() > 20  # the tone starting is an onset of tens of dB


def test_noise_is_unvoiced_and_loudness_in_dbfs() -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(0, 0.1, 16000)).astype(np.float32)
    feats = frame_features(x, 16000, 25.0)
    assert (feats.voicing < 0.45).mean() > 0.9
    assert np.median(loudness_db(x, 16000, 25.0)) == pytest.approx(-20, abs=0.5)  # RMS 0.1 = -20 dBFS
