"""Debug markers for measuring a live session from the receiving side (``TALKER_DEBUG_MARKERS=1``).

Video: a row of black/white blocks in the top-left corner carries the frame index (16 bits), whether
the frame belongs to an utterance, whether its lips are apart, and a fixed sync pattern. Audio: a 10 ms
1 kHz beep starts every frame whose index is a multiple of the frame rate (see
``server.timeline.BEEP_SAMPLES``), so a receiver can pair a beep with the video frame of the same index
and measure the A/V offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talker.stages import CHANNEL_INDEX

_INDEX_BITS = 16
_SYNC = (1, 0, 1)
N_BITS = _INDEX_BITS + 2 + len(_SYNC)
LIPS_APART = 0.04
"""A frame's lips are apart when ``jawOpen * (1 - mouthClose)`` passes this (the closed threshold of
``tools.motion_metrics``)."""
_BLACK, _WHITE = 16, 235


def block_size(width: int) -> int:
    return max(4, min(16, (width // N_BITS) & ~1))


@dataclass(frozen=True)
class Marker:
    index: int  # frame index modulo 65536
    speaking: bool
    mouth_open: bool = False


def lips_apart(values: np.ndarray) -> bool:
    """Whether motion values (one frame of ``CHANNELS``) part the lips."""
    gap = float(values[CHANNEL_INDEX["jawOpen"]]) * (1.0 - float(values[CHANNEL_INDEX["mouthClose"]]))
    return gap > LIPS_APART


def stamp(yuv: np.ndarray, width: int, index: int, speaking: bool, mouth_open: bool = False) -> None:
    """Write the marker into the luma plane of an I420 image (H * 3 / 2, W) in place."""
    b = block_size(width)
    bits = [(index >> i) & 1 for i in range(_INDEX_BITS)] + [int(speaking), int(mouth_open), *_SYNC]
    for i, bit in enumerate(bits):
        yuv[0:b, i * b : (i + 1) * b] = _WHITE if bit else _BLACK


def read(luma: np.ndarray) -> Marker | None:
    """Decode a marker from a luma plane (H, W); None when the sync pattern is not there."""
    w = luma.shape[1]
    b = block_size(w)
    q = b // 4
    bits = []
    for i in range(N_BITS):
        patch = luma[q : b - q, i * b + q : (i + 1) * b - q]
        bits.append(1 if float(patch.mean()) > 128 else 0)
    if tuple(bits[_INDEX_BITS + 2 :]) != _SYNC:
        return None
    index = sum(bit << i for i, bit in enumerate(bits[:_INDEX_BITS]))
    return Marker(index, bool(bits[_INDEX_BITS]), bool(bits[_INDEX_BITS + 1]))


def beep_onset(pcm: np.ndarray, threshold: float = 0.2) -> int | None:
    """Sample offset of a beep in a block of mono samples (float in [-1, 1] or int16), or None."""
    x = pcm.astype(np.float32)
    if pcm.dtype == np.int16:
        x /= 32768.0
    hit = np.flatnonzero(np.abs(x) > threshold)
    return int(hit[0]) if len(hit) else None
