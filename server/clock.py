"""A session's media clock: one sample counter (48 kHz) that both WebRTC tracks are stamped from.

Video frame k starts at sample ``k * samples_per_frame``; audio frame n (20 ms) at sample ``n * 960``.
Wall time is ``t0 + sample / 48000``, with ``t0`` set when the first track asks for media.
"""

from __future__ import annotations

import math
import time

from server.settings import AUDIO_SAMPLE_RATE


class MediaClock:
    """Maps samples and frames to ``time.monotonic()`` seconds. Started once, by the first track."""

    def __init__(self, fps: float, sample_rate: int = AUDIO_SAMPLE_RATE) -> None:
        self.fps = float(fps)
        self.sample_rate = int(sample_rate)
        self.samples_per_frame = int(round(sample_rate / fps))
        self.t0: float | None = None

    def start(self) -> float:
        if self.t0 is None:
            self.t0 = time.monotonic()
        return self.t0

    @property
    def started(self) -> bool:
        return self.t0 is not None

    def _t0(self) -> float:
        if self.t0 is None:
            raise RuntimeError("media clock not started")
        return self.t0

    def sample_at(self, now: float) -> float:
        """Sample position (fractional) at monotonic time ``now``."""
        return (now - self._t0()) * self.sample_rate

    def frame_at(self, now: float) -> int:
        """Index of the video frame being shown at ``now`` (frame k covers [k/fps, (k+1)/fps))."""
        return int(math.floor((now - self._t0()) * self.fps + 1e-9))

    def time_of_frame(self, k: int) -> float:
        return self._t0() + k * self.samples_per_frame / self.sample_rate

    def time_of_sample(self, s: int) -> float:
        return self._t0() + s / self.sample_rate
