"""Audio streamed into a live session (a WebSocket of PCM, or the peer's own WebRTC audio track).

The avatar plays it and the lip-sync model moves its mouth to it (``talker.stages.MixedMotionStream``).
``AudioInput`` is a thread: the event loop hands it decoded mono chunks; it resamples them to 48 kHz
as one continuous signal, cuts whole video frames and pushes them to the timeline as segments without
phones. An utterance's first frames wait until ``buffer_frames`` are in (a jitter buffer; the model
reads real audio ahead), and so does audio that resumes after the stream ran dry, so a stall is a
closed-mouth pause, not a stutter of late pieces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import av
import numpy as np

from server.settings import AUDIO_SAMPLE_RATE
from server.timeline import Segment, Timeline
from talker.stages import Speech, resample

log = logging.getLogger("talker.server")

ENCODINGS = ("s16le",)
MIN_RATE, MAX_RATE = 8000, 192_000
MAX_CHANNELS = 8
MAX_SEGMENT_FRAMES = 25
"""Audio sent faster than real time is pushed in segments of at most this many frames (1 s at 25 fps)."""


class AudioFormatError(ValueError):
    """Audio whose declared format or bytes cannot be played; the message names what is wrong."""


@dataclass(frozen=True)
class PcmFormat:
    """Raw PCM as a client declares it: signed 16-bit little-endian, interleaved channels."""

    sample_rate: int
    channels: int = 1
    encoding: str = "s16le"

    @staticmethod
    def parse(fields: Mapping[str, object]) -> PcmFormat:
        """From a client's ``{"sample_rate": 16000, "channels": 1, "encoding": "s16le"}`` (query
        parameters are strings); raises ``AudioFormatError`` naming the bad field."""
        if "sample_rate" not in fields:
            raise AudioFormatError("declare the audio format first: sample_rate (Hz), channels, encoding s16le")
        out: dict[str, int] = {}
        for key, default, lo, hi in (("sample_rate", None, MIN_RATE, MAX_RATE), ("channels", 1, 1, MAX_CHANNELS)):
            raw = fields.get(key, default)
            try:
                value = int(str(raw))
            except ValueError:
                raise AudioFormatError(f"{key} must be a whole number, got {raw!r}") from None
            if not lo <= value <= hi:
                raise AudioFormatError(f"{key} {value} is outside {lo}..{hi}")
            out[key] = value
        encoding = str(fields.get("encoding", "s16le")).lower()
        if encoding not in ENCODINGS:
            raise AudioFormatError(f"encoding {encoding!r} is not supported; send {' or '.join(ENCODINGS)}")
        return PcmFormat(out["sample_rate"], out["channels"], encoding)

    def decode(self, data: bytes) -> np.ndarray:
        """Bytes -> int16 mono samples (channels averaged); raises ``AudioFormatError`` when the bytes are
        not whole frames of the declared channels."""
        width = 2 * self.channels
        if len(data) % width:
            raise AudioFormatError(
                f"a message of {len(data)} bytes is not whole s16le frames of {self.channels} channel(s)"
                f" ({width} bytes each)"
            )
        x = np.frombuffer(data, "<i2")
        if self.channels == 1:
            return x.astype(np.int16)
        return np.round(x.reshape(-1, self.channels).mean(axis=1)).astype(np.int16)


@dataclass(frozen=True)
class _Chunk:
    samples: np.ndarray  # int16 mono
    sample_rate: int
    utterance: int
    epoch: int
    arrived_at: float


@dataclass(frozen=True)
class _End:
    utterance: int
    epoch: int


class AudioInput(threading.Thread):
    """Outside audio -> timeline segments (see the module docstring). Thread-safe ``add``/``end``/``clear``."""

    def __init__(self, name: str, timeline: Timeline, fps: float, buffer_frames: int) -> None:
        super().__init__(name=name, daemon=True)
        self.timeline = timeline
        self.spf = int(round(AUDIO_SAMPLE_RATE / fps))
        self.buffer_frames = buffer_frames
        self._items: deque[_Chunk | _End] = deque()
        self._queued = 0.0  # seconds of audio in _items
        self._cond = threading.Condition()
        self._stop_event = threading.Event()
        self._utterance: int | None = None
        self._resampler: av.AudioResampler | None = None
        self._rate = 0
        self._pending = np.zeros(0, np.int16)  # 48 kHz samples not yet in a segment
        self._arrived = 0.0
        self.seconds_in = 0.0  # audio received
        self.frames_pushed = 0

    # ------------------------------------------------------------------ event loop side
    @property
    def queued_s(self) -> float:
        """Seconds of audio received and not yet handed to the timeline."""
        return self._queued

    def add(self, samples: np.ndarray, sample_rate: int, utterance: int, epoch: int) -> None:
        if not len(samples):
            return
        with self._cond:
            self._items.append(_Chunk(samples, sample_rate, utterance, epoch, time.monotonic()))
            self._queued += len(samples) / sample_rate
            self.seconds_in += len(samples) / sample_rate
            self._cond.notify_all()

    def end(self, utterance: int, epoch: int) -> None:
        """The utterance is complete: its last part frame plays too (padded with silence)."""
        with self._cond:
            self._items.append(_End(utterance, epoch))
            self._cond.notify_all()

    def clear(self) -> None:
        """Drop the audio not yet played (an interrupt: the timeline drops what it holds itself)."""
        with self._cond:
            self._items.clear()
            self._queued = 0.0
            self._cond.notify_all()

    def stop(self) -> None:
        self._stop_event.set()
        self.clear()

    # ------------------------------------------------------------------ worker side
    def run(self) -> None:
        while not self._stop_event.is_set():
            with self._cond:
                while not self._items and not self._stop_event.is_set():
                    self._cond.wait(0.5)
                if self._stop_event.is_set():
                    return
                item = self._items.popleft()
                if isinstance(item, _Chunk):
                    self._queued = max(0.0, self._queued - len(item.samples) / item.sample_rate)
            try:
                self._handle(item)
            except (ValueError, av.FFmpegError) as e:  # pragma: no cover - a resampler fault: drop the utterance
                log.warning("%s: audio dropped: %s", self.name, e)
                self._reset()

    def _reset(self) -> None:
        self._utterance = None
        self._resampler = None
        self._pending = np.zeros(0, np.int16)

    def _handle(self, item: _Chunk | _End) -> None:
        if item.epoch != self.timeline.epoch:
            self._reset()  # interrupted after it was sent
            return
        if item.utterance != self._utterance:
            self._reset()
            self._utterance = item.utterance
        if isinstance(item, _End):
            self._pending = np.concatenate([self._pending, self._flush()])
            self._push(item.utterance, item.epoch, final=True)
            self._reset()
            return
        if not len(self._pending):
            self._arrived = item.arrived_at
        self._pending = np.concatenate([self._pending, self._resample(item.samples, item.sample_rate)])
        self._push(item.utterance, item.epoch, final=False)

    def _resample(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """One continuous 48 kHz signal (libswresample keeps its filter state between chunks)."""
        if rate == AUDIO_SAMPLE_RATE:
            return samples
        if self._resampler is None or rate != self._rate:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_SAMPLE_RATE)
            self._rate = rate
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[None, :]), format="s16", layout="mono")
        frame.sample_rate = rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)

    def _flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.int16)
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(None)]
        self._resampler = None
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)

    def _push(self, utterance: int, epoch: int, final: bool) -> None:
        spf = self.spf
        n = -(-len(self._pending) // spf) if final else len(self._pending) // spf
        if n == 0:
            return
        if not final and n < self.buffer_frames and self.timeline.speech_ahead() == 0:
            return  # (re)fill the jitter buffer before playing
        while n > 0 and not self._stop_event.is_set():
            m = min(n, MAX_SEGMENT_FRAMES)
            audio = np.zeros(m * spf, np.int16)
            part = self._pending[: m * spf]
            audio[: len(part)] = part
            self._pending = self._pending[m * spf :]
            if not self.timeline.push_segment(self._segment(audio, m, utterance, epoch)):
                self._reset()
                return
            self.frames_pushed += m
            n -= m

    def _segment(self, audio: np.ndarray, n_frames: int, utterance: int, epoch: int) -> Segment:
        rate = self.timeline.tts_rate
        x = resample(audio.astype(np.float32) / 32768.0, AUDIO_SAMPLE_RATE, rate)
        # no phones: the mouth comes from the lip-sync model; ``first`` stays off (the say metrics)
        return Segment(Speech(x, rate, ()), audio, n_frames, utterance, epoch, False, self._arrived)
