"""Measured load: the share of video frames that came too late, over the last few seconds.

A fixed ``max_sessions`` is a guess about the machine; a late frame (not rendered by its send time, the
previous image shown again) is the measurement that the guess was wrong. The session manager samples the
server's frame counters once a second; while more than ``admit_max_late_pct`` of the frames shown in
the window came late, new sessions are refused (HTTP 429) and the health checks say the server is full,
so a proxy sends the next client elsewhere. The sessions already open are never closed for it.
"""

from __future__ import annotations

import time
from collections import deque

from server.metrics import Metrics

WINDOW_S = 10.0
"""How far back the late share looks."""
MIN_FRAMES = 100
"""Fewer frames than this in the window say nothing (a server with no sessions is never overloaded)."""


class LoadMonitor:
    """The recent late-frame share of a server, from its ``Metrics`` counters."""

    def __init__(self, metrics: Metrics, max_late_pct: float, window_s: float = WINDOW_S) -> None:
        """``max_late_pct``: the share of late frames over which new sessions are refused (0: never)."""
        self.metrics = metrics
        self.max_late_pct = max_late_pct
        self.window_s = window_s
        self._samples: deque[tuple[float, float, float]] = deque()  # (time, frames shown, frames late)

    def sample(self, now: float | None = None) -> None:
        """Record the counters now (call about once a second)."""
        now = time.monotonic() if now is None else now
        m = self.metrics
        shown = m.video_frames.value + m.video_repeated.value
        self._samples.append((now, shown, m.video_late.value))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()

    def late_pct(self) -> float | None:
        """Late frames as a share of the frames shown over the window, in %; None when too few were shown."""
        if len(self._samples) < 2:
            return None
        (_, shown0, late0), (_, shown1, late1) = self._samples[0], self._samples[-1]
        if shown1 - shown0 < MIN_FRAMES:
            return None
        return 100.0 * (late1 - late0) / (shown1 - shown0)

    def overloaded(self) -> str | None:
        """Why no new session should open now, or None."""
        pct = self.late_pct()
        if not self.max_late_pct or pct is None or pct <= self.max_late_pct:
            return None
        return (
            f"this server is at capacity: {pct:.1f} % of its video frames came late over the last "
            f"{self.window_s:g} s (its limit is {self.max_late_pct:g} %); try again later"
        )
