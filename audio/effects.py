"""Voice effects on float samples: pitch shift with the duration kept (so phone timings stay exact)."""

from __future__ import annotations

import numpy as np

_N_FFT = 1024
_HOP = 256


def pitch_shift(samples: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Raise (positive) or lower the pitch by ``semitones`` without changing the length.

    Phase-vocoder time stretch by 2**(semitones/12), then resampling back to the original length. Formants
    move with the pitch, so a few semitones make a different-sounding speaker; beyond about +-5 it sounds
    processed. Returns float32 of the same shape (mono, 1-D).
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"pitch_shift expects mono samples, got shape {x.shape}")
    if abs(semitones) < 1e-3 or len(x) < _N_FFT:
        return x.copy()
    _ = sample_rate  # the shift is rate-independent; kept for a uniform effect signature
    ratio = float(2.0 ** (semitones / 12.0))
    stretched = _time_stretch(x, ratio)
    from scipy.signal import resample

    y = resample(stretched, len(x)).astype(np.float32)
    peak_in = float(np.max(np.abs(x)))
    peak_out = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak_out > max(1.0, peak_in * 1.5):
        y *= max(peak_in, 1e-6) / peak_out
    return np.clip(y, -1.0, 1.0)


def _time_stretch(x: np.ndarray, ratio: float) -> np.ndarray:
    """Make ``x`` ``ratio`` times longer, same pitch (phase vocoder, Hann windows, 75% overlap)."""
    win = np.hanning(_N_FFT).astype(np.float64)
    pad = np.concatenate([np.zeros(_N_FFT // 2), x.astype(np.float64), np.zeros(_N_FFT)])
    n_frames = 1 + (len(pad) - _N_FFT) // _HOP
    idx = np.arange(_N_FFT)[None, :] + _HOP * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(pad[idx] * win, axis=1)  # (frames, bins)
    steps = np.arange(0.0, n_frames - 1, 1.0 / ratio)  # analysis positions of the output frames
    i0 = steps.astype(int)
    frac = (steps - i0)[:, None]
    mag = (1 - frac) * np.abs(spec[i0]) + frac * np.abs(spec[i0 + 1])
    omega = 2 * np.pi * _HOP * np.arange(spec.shape[1]) / _N_FFT  # expected phase advance per hop
    dphi = np.angle(spec[i0 + 1]) - np.angle(spec[i0]) - omega
    dphi = dphi - 2 * np.pi * np.round(dphi / (2 * np.pi)) + omega
    phase = np.angle(spec[0])[None, :] + np.concatenate([np.zeros((1, spec.shape[1])), np.cumsum(dphi, 0)[:-1]])
    frames = np.fft.irfft(mag * np.exp(1j * phase), n=_N_FFT, axis=1) * win
    out_len = _N_FFT + _HOP * (len(steps) - 1)
    out = np.zeros(out_len)
    norm = np.zeros(out_len)
    for k in range(len(steps)):  # overlap-add (frames are few: one per 256 samples)
        out[k * _HOP : k * _HOP + _N_FFT] += frames[k]
        norm[k * _HOP : k * _HOP + _N_FFT] += win**2
    out /= np.maximum(norm, 1e-3)
    start = int(round(_N_FFT // 2 * ratio))
    return out[start : start + int(round(len(x) * ratio))]
