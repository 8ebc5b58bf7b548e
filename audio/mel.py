"""Log-mel frames for the learned lip-sync model, whole-file or streamed chunk by chunk with the same result.

Audio is 16 kHz mono. Frame j is centred at ``(j + 0.5) * HOP`` samples (every 20 ms) and reads the
``WIN`` samples around that centre (zeros before the start and after the end), so it is final once
audio reaches ``(j + 0.5) * HOP + WIN / 2`` samples: 26 ms after its centre.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
HOP = 320  # samples per frame: 20 ms, 50 frames per second
WIN = 512  # analysis window: 32 ms (Hann), also the FFT size
N_MELS = 40
F_MIN_HZ = 60.0
F_MAX_HZ = 7600.0
LOG_FLOOR = 1e-8  # power floor: digital silence reads log10(1e-8) = -8
FRAME_RATE = SAMPLE_RATE / HOP


def n_frames_for(n_samples: int) -> int:
    """Frames covering ``n_samples`` (the last partial hop counts)."""
    return -(-max(0, n_samples) // HOP)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


@functools.lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """Triangular mel filter bank, shape (N_MELS, WIN // 2 + 1), each filter of unit area."""
    edges_mel = np.linspace(_hz_to_mel(np.array(F_MIN_HZ)), _hz_to_mel(np.array(F_MAX_HZ)), N_MELS + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(WIN, 1.0 / SAMPLE_RATE)
    fb = np.zeros((N_MELS, len(freqs)))
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
        fb[m] /= max(fb[m].sum(), 1e-9)
    return fb.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(WIN + 1)[:WIN].astype(np.float32)


def _frames(padded: np.ndarray, first: int, count: int, offset: int) -> np.ndarray:
    """log10 mel power of frames ``first .. first + count``; ``padded[i]`` holds absolute sample ``i - offset``."""
    if count <= 0:
        return np.zeros((0, N_MELS), np.float32)
    starts = (np.arange(first, first + count) * HOP + HOP // 2 - WIN // 2) + offset
    idx = starts[:, None] + np.arange(WIN)[None, :]
    spec = np.fft.rfft(padded[idx] * _window(), axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    # row by row so a frame's value does not depend on how many frames are computed together
    mel = np.einsum("fk,mk->fm", power, mel_filters())
    return np.log10(np.maximum(mel, LOG_FLOOR)).astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """16 kHz mono float samples, shape (n,) -> log10 mel power, shape (n_frames_for(n), N_MELS)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"log_mel expects mono (1-D) samples, got shape {x.shape}")
    n = n_frames_for(len(x))
    pad = WIN
    padded = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad + HOP, np.float32)])
    return _frames(padded, 0, n, pad)


class MelStream:
    """``log_mel`` computed while 16 kHz audio arrives: each push returns the frames that became final."""

    def __init__(self) -> None:
        self._buf = np.zeros(WIN, np.float32)  # zeros stand for the audio before the start
        self._base = -WIN  # absolute sample index of _buf[0]
        self._n = 0  # samples received
        self._next = 0  # next frame to emit
        self._done = False

    def push(self, samples: np.ndarray) -> np.ndarray:
        if self._done:
            raise RuntimeError("push() after finish()")
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"MelStream expects mono (1-D) samples, got shape {x.shape}")
        self._buf = np.concatenate([self._buf, x])
        self._n += len(x)
        # frame j needs samples up to (j + 0.5) * HOP + WIN / 2
        last = (self._n - WIN // 2 - HOP // 2) // HOP + 1
        return self._emit(max(0, last))

    def finish(self) -> np.ndarray:
        """The remaining frames, the audio after the end read as zeros."""
        self._done = True
        self._buf = np.concatenate([self._buf, np.zeros(WIN + HOP, np.float32)])
        return self._emit(n_frames_for(self._n))

    def _emit(self, last: int) -> np.ndarray:
        out = _frames(self._buf, self._next, last - self._next, -self._base)
        self._next = max(self._next, last)
        keep_from = self._next * HOP + HOP // 2 - WIN // 2  # first sample a future frame reads
        cut = keep_from - self._base
        if cut > 0:
            self._buf = self._buf[cut:]
            self._base += cut
        return out
