"""Frame-rate audio features for motion: loudness envelope and voicing."""

from __future__ import annotations

import numpy as np


def frame_count(n_samples: int, sample_rate: int, fps: float) -> int:
    """Number of video frames covering ``n_samples`` (the last partial frame counts)."""
    return int(np.ceil(n_samples * fps / sample_rate - 1e-9))


def loudness_db(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int | None = None) -> np.ndarray:
    """RMS level per video frame in dBFS (floor -80), shape (n_frames,)."""
    n = frame_count(len(samples), sample_rate, fps) if n_frames is None else n_frames
    hop = sample_rate / fps
    out = np.full(n, -80.0, np.float32)
    for k in range(n):
        a = int(round(k * hop))
        b = int(round((k + 1) * hop))
        seg = samples[a:b]
        if len(seg):
            rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64))))
            out[k] = max(-80.0, 20 * np.log10(rms + 1e-12))
    return out
