"""Frame-rate audio features for motion: loudness, pitch, voicing and onsets, one value per video frame.

Everything is computed from the samples of the frame itself (pitch from a 40 ms window centred on
it), so the features are causal up to 20 ms and can be computed while audio streams in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F0_MIN_HZ = 60.0
F0_MAX_HZ = 400.0
_VOICING_THRESHOLD = 0.45  # normalised autocorrelation peak above which a window counts as voiced


def frame_count(n_samples: int, sample_rate: int, fps: float) -> int:
    """Number of video frames covering ``n_samples`` (the last partial frame counts)."""
    return int(np.ceil(n_samples * fps / sample_rate - 1e-9))


def loudness_db(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int | None = None) -> np.ndarray:
    """RMS level per video frame in dBFS (floor -80), shape (n_frames,)."""
    n = frame_count(len(samples), sample_rate, fps) if n_frames is None else n_frames
    hop = sample_rate / fps
    k = np.arange(n)
    a = np.clip(np.round(k * hop).astype(np.int64), 0, len(samples))
    b = np.clip(np.round((k + 1) * hop).astype(np.int64), 0, len(samples))
    x = samples.astype(np.float64)
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    rms = np.sqrt(np.maximum(cs[b] - cs[a], 0.0) / np.maximum(b - a, 1))
    return np.where(b > a, np.maximum(-80.0, 20 * np.log10(rms + 1e-12)), -80.0).astype(np.float32)


def pitch_at(samples: np.ndarray, sample_rate: int, t_s: float, window_s: float = 0.04) -> tuple[float, float]:
    """(F0 in Hz or 0 when unvoiced, voicing strength 0..1) of the window centred at ``t_s``.

    Normalised autocorrelation with the usual octave guard: the shortest lag whose peak is within 90%
    of the best one wins, so a period's multiples are not mistaken for the period.
    """
    half = int(window_s * sample_rate / 2)
    c = int(round(t_s * sample_rate))
    seg = samples[max(0, c - half) : c + half].astype(np.float64)
    lo = int(sample_rate / F0_MAX_HZ)
    hi = int(sample_rate / F0_MIN_HZ)
    if len(seg) < hi + 2:
        return 0.0, 0.0
    seg = seg - seg.mean()
    energy = float(seg @ seg)
    if energy < 1e-8 * len(seg):
        return 0.0, 0.0
    ac = np.correlate(seg, seg, "full")[len(seg) - 1 :]
    # normalise by the overlap so long lags are not penalised
    norm = ac[: hi + 1] / (energy * (len(seg) - np.arange(hi + 1)) / len(seg))
    cand = norm[lo : hi + 1]
    best = float(cand.max())
    if best < _VOICING_THRESHOLD:
        return 0.0, max(0.0, best)
    peaks = np.where((cand[1:-1] >= cand[:-2]) & (cand[1:-1] >= cand[2:]) & (cand[1:-1] >= 0.9 * best))[0] + 1
    lag = lo + (int(peaks[0]) if len(peaks) else int(np.argmax(cand)))
    return float(sample_rate / lag), best


@dataclass(frozen=True)
class FrameFeatures:
    """Per video frame: loudness (dBFS), F0 (Hz, 0 when unvoiced), voicing (0..1), onset strength (dB rise)."""

    loudness_db: np.ndarray
    f0_hz: np.ndarray
    voicing: np.ndarray
    onset: np.ndarray


def frame_features(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int | None = None) -> FrameFeatures:
    """Loudness, pitch, voicing and onsets for every video frame of ``samples``."""
    n = frame_count(len(samples), sample_rate, fps) if n_frames is None else n_frames
    loud = loudness_db(samples, sample_rate, fps, n)
    f0 = np.zeros(n, np.float32)
    voicing = np.zeros(n, np.float32)
    for k in range(n):
        if loud[k] > -45.0:
            f0[k], voicing[k] = pitch_at(samples, sample_rate, (k + 0.5) / fps)
    onset = np.maximum(np.diff(loud, prepend=loud[:1]), 0.0).astype(np.float32)
    return FrameFeatures(loud, f0, voicing, onset)
