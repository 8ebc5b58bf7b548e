"""Prometheus text exposition, hand-written (prometheus-client is not a dependency).

Counters and histograms are process-wide and thread-safe; per-session gauges are collected from the
live sessions when ``/metrics`` is scraped.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
RENDER_BUCKETS_S = (0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.1, 0.25)


def _labels(labels: dict[str, str] | None) -> str:
    if not labels:
        return ""
    esc = {k: str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for k, v in labels.items()}
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc.items()) + "}"


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._value = 0.0
        self._lock = threading.Lock()

    def inc(self, n: float = 1.0) -> None:
        with self._lock:
            self._value += n

    @property
    def value(self) -> float:
        return self._value

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter", f"{self.name} {_num(self._value)}"]


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._n = 0
        self._lock = threading.Lock()

    def observe(self, v: float) -> None:
        with self._lock:
            self._sum += v
            self._n += 1
            for i, b in enumerate(self.buckets):
                if v <= b:
                    self._counts[i] += 1
                    break
            else:
                self._counts[-1] += 1

    @property
    def count(self) -> int:
        return self._n

    @property
    def sum(self) -> float:
        return self._sum

    def render(self) -> list[str]:
        with self._lock:
            counts, total, n = list(self._counts), self._sum, self._n
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        acc = 0
        for b, c in zip(self.buckets, counts):
            acc += c
            out.append(f'{self.name}_bucket{{le="{_num(b)}"}} {acc}')
        out.append(f'{self.name}_bucket{{le="+Inf"}} {n}')
        out.append(f"{self.name}_sum {_num(total)}")
        out.append(f"{self.name}_count {n}")
        return out


def gauge(name: str, help_text: str, samples: Iterable[tuple[dict[str, str] | None, float]]) -> list[str]:
    """A gauge family from (labels, value) pairs."""
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    out.extend(f"{name}{_labels(lab)} {_num(v)}" for lab, v in samples)
    return out


class Metrics:
    """The server's process-wide counters and latency histograms."""

    def __init__(self) -> None:
        self.sessions_created = Counter("talker_sessions_created_total", "live sessions opened")
        self.sessions_rejected = Counter("talker_sessions_rejected_total", "session requests refused at the limit")
        self.sessions_closed = Counter("talker_sessions_closed_total", "live sessions closed")
        self.video_frames = Counter("talker_video_frames_sent_total", "video frames handed to WebRTC")
        self.video_late = Counter(
            "talker_video_frames_late_total", "frames not rendered by their send time (previous frame repeated)"
        )
        self.video_repeated = Counter(
            "talker_video_frames_repeated_total", "frames not sent: the image of the frame before (nothing moved)"
        )
        self.video_skipped = Counter("talker_video_frames_skipped_total", "frame slots skipped by a stalled sender")
        self.audio_frames = Counter("talker_audio_frames_sent_total", "20 ms audio frames handed to WebRTC")
        self.audio_skipped = Counter("talker_audio_frames_skipped_total", "20 ms audio slots skipped by a stall")
        self.utterances = Counter("talker_utterances_total", "say requests accepted")
        self.tts_errors = Counter("talker_tts_errors_total", "pieces of text the voice could not speak")
        self.speech_gaps = Counter(
            "talker_speech_gaps_total", "streamed sentences that paused because their next piece came too late"
        )
        self.say_to_first_frame = Histogram(
            "talker_say_first_frame_seconds", "say request to its first frame handed to WebRTC"
        )
        self.interrupt_to_idle = Histogram(
            "talker_interrupt_idle_seconds", "interrupt request to the first idle frame handed to WebRTC"
        )
        self.tts_piece = Histogram("talker_tts_piece_seconds", "synthesis time of one sentence or clause")
        self.tts_first = Histogram(
            "talker_tts_first_audio_seconds", "an utterance's first piece: synthesis start -> its first decoded audio"
        )
        self.frames_reused = Counter(
            "talker_video_frames_reused_total", "frames in which nothing moved enough to draw anew (the last one again)"
        )
        self.frames_recalled = Counter(
            "talker_video_frames_recalled_total",
            "listening frames shown from the session's memo of its idle loop instead of rendered",
        )
        self.render_frame = Histogram("talker_render_frame_seconds", "warp render of one frame", RENDER_BUCKETS_S)
        self.job_seconds = Histogram(
            "talker_render_job_seconds", "wall time of a finished render job", (1, 2, 5, 10, 30, 60, 120, 300, 600)
        )

    def families(self) -> list[Counter | Histogram]:
        return [v for v in vars(self).values() if isinstance(v, (Counter, Histogram))]

    def render(self) -> list[str]:
        out: list[str] = []
        for fam in self.families():
            out.extend(fam.render())
        return out
