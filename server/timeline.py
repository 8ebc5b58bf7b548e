"""A live session's timeline: what every video frame and its slice of audio carry.

The session's motion comes from ONE ``motion.MotionStream`` fed, in order, with whatever the session
plays: speech segments (one per TTS sentence) or 0.2 s pieces of silence when nothing is said.
Blinks, gaze and head drift are functions of absolute time in that stream, so idle and speech join
without seams. The stream needs ~0.2 s of look-ahead before a frame is final, so the input runs a
few frames ahead of the frames handed to the renderer, and the renderer a few frames ahead of the
send clock.

Saying something or interrupting rewrites the future: the stream state is saved before every push,
so the timeline rolls back to the first frame neither track has taken yet (the ``safe`` frame),
pushes again the part of the interrupted piece before it, and pushes the new input from there.
Nothing that was sent is ever changed.

Frame k covers audio samples ``[k * spf, (k + 1) * spf)`` at 48 kHz (``spf = 48000 / fps``). The speech
segments it plays are made in ``server.segments``.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from server.segments import Segment, SegmentJoiner, make_segment, trim_leading_silence
from server.settings import AUDIO_SAMPLE_RATE
from talker.stages import SILENCE, MixedMotionStream, MotionStream, MotionStyle, Phone, Speech

__all__ = ["FramePlan", "Segment", "SegmentJoiner", "Timeline", "TimelineState", "make_segment", "trim_leading_silence"]

FADE_SAMPLES = 480
"""Speech cut by an interrupt fades out over this many samples (10 ms) instead of clicking."""

IDLE_PUSH_FRAMES = 10
"""Silence enters the motion stream this many frames at a time: a push (with its snapshot) costs ~1 ms, about
the same for 5 frames as for 10; speech that starts within a push re-pushes the part before it."""

BEEP_SAMPLES = 480
"""Debug marker: a 10 ms 1 kHz beep at the start of every frame whose index is a multiple of fps."""


@dataclass
class FramePlan:
    """Frame ``index``: its audio (int16, spf samples), channel values once final, and what it shows."""

    index: int
    audio: np.ndarray
    generation: int
    utterance: int | None = None  # None: idle
    first: bool = False  # first frame of an utterance
    said_at: float | None = None
    values: np.ndarray | None = None

    @property
    def speaking(self) -> bool:
        return self.utterance is not None


@dataclass
class _Push:
    """One input pushed to the motion stream, with the stream state before it (for roll-back)."""

    frame: int
    n_frames: int
    snapshot: MotionStream | MixedMotionStream
    emitted_before: int
    segment: Segment | None = None


@dataclass
class TimelineState:
    """A snapshot for status and metrics."""

    speaking: bool
    waiting_segments: int
    input_ahead_frames: int
    audio_frame: int
    video_next: int
    epoch: int
    cuts: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def _fit(speech: Speech, n: int) -> Speech:
    """``speech`` padded with silence (or cut) to exactly ``n`` samples, phones adjusted."""
    sr = speech.sample_rate
    m = len(speech.samples)
    end = n / sr
    if n == m:
        return speech
    if not speech.phones:  # outside audio: no phones to fit
        fitted = np.zeros(n, np.float32)
        fitted[: min(n, m)] = speech.samples[:n]
        return Speech(fitted, sr, (), speech.words, speech.text)
    if n > m:
        samples = np.concatenate([speech.samples.astype(np.float32), np.zeros(n - m, np.float32)])
        phones = list(speech.phones)
        if phones and phones[-1].symbol == SILENCE:
            phones[-1] = Phone(phones[-1].start_s, end, SILENCE)
        else:
            phones.append(Phone(phones[-1].end_s if phones else 0.0, end, SILENCE))
        return Speech(samples, sr, tuple(phones), speech.words, speech.text)
    kept = [Phone(p.start_s, min(p.end_s, end), p.symbol, p.stress) for p in speech.phones if p.start_s < end]
    if not kept:
        kept = [Phone(0.0, end, SILENCE)]
    return Speech(speech.samples[:n].astype(np.float32), sr, tuple(kept), (), speech.text)


class Timeline:
    """Thread-safe. Producers: the speech worker (``push_segment``). Consumers: the audio track
    (``take_audio``), the video track (``video_plan``) and the render worker (``frames_to_render``)."""

    def __init__(
        self,
        fps: float,
        tts_rate: int,
        seed: int = 0,
        style: MotionStyle | None = None,
        max_waiting: int = 2,
        markers: bool = False,
        earliest_frame: Callable[[], int] | None = None,
        stream: MotionStream | MixedMotionStream | None = None,
    ) -> None:
        """``earliest_frame``: the first frame that can still be rendered before its send time (new
        speech starts there when the avatar is idle); without it, the frame after the next one sent.
        ``stream``: the motion stream to feed (default: the phonetic one of ``fps``, ``seed``, ``style``;
        a ``MixedMotionStream`` also plays segments of outside audio, which have no phones)."""
        self.fps = float(fps)
        self.spf = int(round(AUDIO_SAMPLE_RATE / fps))
        self.tts_rate = int(tts_rate)
        self.max_waiting = max_waiting
        self.markers = markers
        self.earliest_frame = earliest_frame
        self._cond = threading.Condition()
        self._stream = stream if stream is not None else MotionStream(fps, seed, style)
        self._emitted = 0
        self._pushes: deque[_Push] = deque()
        self._input_end = 0
        self._plans: dict[int, FramePlan] = {}
        self._waiting: deque[Segment] = deque()
        self._speech_end = 0
        self._audio_pos = 0
        self._video_next = 0
        self._generation = 0
        self._cuts = 0
        self._silence_cache: dict[int, Speech] = {}
        self.epoch = 0
        self.closed = False
        self.gaps = 0  # streamed sentences whose next piece came too late to follow without a pause
        self.gap_frames = 0
        t = np.arange(BEEP_SAMPLES) / AUDIO_SAMPLE_RATE
        self._beep = (0.5 * 32767 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.int32)

    # ----------------------------------------------------------------------------- producers
    def push_segment(self, seg: Segment) -> bool:
        """Queue a piece to play after what is scheduled; blocks while ``max_waiting`` are queued.

        Returns False (and drops it) when it belongs to an interrupted epoch or the timeline closed.
        When the avatar is idle, the piece starts on the first frame after the next one to be sent.
        """
        with self._cond:
            while len(self._waiting) >= self.max_waiting and seg.epoch == self.epoch and not self.closed:
                self._cond.wait(0.2)
            if seg.epoch != self.epoch or self.closed:
                return False
            self._waiting.append(seg)
            if len(self._waiting) == 1:
                soon = self.earliest_frame() if self.earliest_frame is not None else self._safe() + 1
                c = max(self._safe(), soon, self._speech_end)
                if seg.joins and c > self._speech_end:
                    # the rest of a sentence came after its first part had played out: a pause
                    self.gaps += 1
                    self.gap_frames += c - self._speech_end
                if c < self._input_end:
                    self._cut(c)
            return True

    def interrupt(self) -> int | None:
        """Drop everything not yet sent; returns the first idle frame, or None if nothing was scheduled."""
        with self._cond:
            self.epoch += 1
            self._waiting.clear()
            self._cond.notify_all()
            c = self._safe()
            if self._speech_end <= c:
                return None
            self._fade_before(c)
            self._cut(c)
            return c

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._waiting.clear()
            self._cond.notify_all()

    # ----------------------------------------------------------------------------- consumers
    def take_audio(self, start: int, n: int) -> np.ndarray:
        """Audio samples [start, start + n) as int16 (the audio track calls this once per 20 ms)."""
        with self._cond:
            end = start + n
            last = (end - 1) // self.spf
            self._ensure_input(last)
            out = np.zeros(n, np.int16)
            pos = start
            while pos < end:
                k = pos // self.spf
                off = pos - k * self.spf
                take = min(self.spf - off, end - pos)
                plan = self._plans.get(k)
                if plan is not None:
                    out[pos - start : pos - start + take] = plan.audio[off : off + take]
                pos += take
            self._audio_pos = max(self._audio_pos, end)
            self._prune()
            return out

    def video_plan(self, k: int) -> FramePlan | None:
        """The plan of frame k, which the video track is about to send (no later change will touch it)."""
        with self._cond:
            self._video_next = max(self._video_next, k + 1)
            self._ensure_input(k)
            plan = self._plans.get(k)
            self._prune()
            return plan

    def frames_to_render(self, lo: int, hi: int, push_to: int | None = None) -> list[FramePlan]:
        """Plans with final channel values for frames lo..hi, pushing input (silence when nothing waits)
        as far as frame ``push_to`` needs (default ``hi``); later frames are returned once final."""
        with self._cond:
            if hi >= lo:
                self._ensure_values(hi if push_to is None else min(hi, push_to))
            return [p for k in range(lo, hi + 1) if (p := self._plans.get(k)) is not None and p.values is not None]

    def speech_ahead(self) -> int:
        """Frames of speech scheduled or waiting that no track has taken yet (0: playing out silence)."""
        with self._cond:
            return max(0, self._speech_end - self._safe()) + sum(s.n_frames for s in self._waiting)

    def safe_frame(self) -> int:
        with self._cond:
            return self._safe()

    def state(self) -> TimelineState:
        with self._cond:
            k = self._audio_pos // self.spf
            plan = self._plans.get(max(k, self._video_next - 1))
            speaking = (plan is not None and plan.speaking) or self._speech_end > self._safe() or bool(self._waiting)
            return TimelineState(
                speaking=speaking,
                waiting_segments=len(self._waiting),
                input_ahead_frames=self._input_end - self._video_next,
                audio_frame=k,
                video_next=self._video_next,
                epoch=self.epoch,
                cuts=self._cuts,
            )

    # ----------------------------------------------------------------------------- internals
    def _safe(self) -> int:
        """First frame that neither track has taken any part of."""
        return max(-(-self._audio_pos // self.spf), self._video_next)

    def _boundary(self, k: int) -> int:
        """Start of frame k in TTS-rate samples."""
        return int(round(k * self.tts_rate / self.fps))

    def _silence(self, n: int) -> Speech:
        s = self._silence_cache.get(n)
        if s is None:
            s = Speech(np.zeros(n, np.float32), self.tts_rate, (Phone(0.0, n / self.tts_rate, SILENCE),))
            self._silence_cache[n] = s
        return s

    def _ensure_input(self, k: int) -> None:
        while self._input_end <= k:
            self._push_next()

    def _ensure_values(self, k: int) -> None:
        for _ in range(10_000):
            plan = self._plans.get(k)
            if plan is None and k < self._input_end:
                return  # pruned
            if plan is not None and plan.values is not None:
                return
            self._push_next()
        raise RuntimeError(f"motion stream gave no values for frame {k}")

    def _push_next(self) -> None:
        c = self._input_end
        snapshot = copy.deepcopy(self._stream)
        seg: Segment | None = None
        while self._waiting:
            s = self._waiting.popleft()
            self._cond.notify_all()
            if s.epoch == self.epoch:
                seg = s
                break
        if seg is None:
            n = IDLE_PUSH_FRAMES
            speech = self._silence(self._boundary(c + n) - self._boundary(c))
        else:
            n = seg.n_frames
            speech = _fit(seg.speech, self._boundary(c + n) - self._boundary(c))
        self._pushes.append(_Push(c, n, snapshot, self._emitted, seg))
        for j in range(n):
            k = c + j
            if seg is None:
                audio = np.zeros(self.spf, np.int16)
                plan = FramePlan(k, audio, self._generation)
            else:
                audio = seg.audio[j * self.spf : (j + 1) * self.spf]
                first = seg.first and j == 0
                plan = FramePlan(k, audio, self._generation, seg.utterance, first, seg.said_at if first else None)
            if self.markers and k % int(round(self.fps)) == 0:
                a = plan.audio.astype(np.int32)
                a[:BEEP_SAMPLES] += self._beep
                plan.audio = np.clip(a, -32768, 32767).astype(np.int16)
            self._plans[k] = plan
        self._input_end = c + n
        if seg is not None:
            self._speech_end = c + n
        self._accept(self._stream.push(speech, joins=seg is not None and seg.joins))

    def _accept(self, values: np.ndarray) -> None:
        for row in values:
            plan = self._plans.get(self._emitted)
            if plan is not None and plan.values is None:
                plan.values = row
            self._emitted += 1

    def _cut(self, c: int) -> None:
        """Roll the input back so that frame ``c`` is the next one pushed (c >= the safe frame)."""
        idx = None
        for i in range(len(self._pushes) - 1, -1, -1):
            if self._pushes[i].frame <= c:
                idx = i
                break
        if idx is None:
            raise RuntimeError(f"cannot cut at frame {c}: its input is no longer kept")
        p = self._pushes[idx]
        while len(self._pushes) > idx:
            self._pushes.pop()
        self._stream = p.snapshot
        self._emitted = p.emitted_before
        self._input_end = p.frame
        for k in [k for k in self._plans if k >= c]:
            del self._plans[k]
        self._generation += 1
        self._cuts += 1
        self._speech_end = min(self._speech_end, c)
        if p.frame < c:
            # the cut falls inside this push (an interrupted sentence): push its head again
            snapshot = copy.deepcopy(self._stream)
            m = c - p.frame
            n = self._boundary(c) - self._boundary(p.frame)
            speech = _fit(p.segment.speech, n) if p.segment is not None else self._silence(n)
            self._pushes.append(_Push(p.frame, m, snapshot, self._emitted, p.segment))
            self._input_end = c
            self._accept(self._stream.push(speech, joins=p.segment is not None and p.segment.joins))
        self._cond.notify_all()

    def _fade_before(self, c: int) -> None:
        """Fade out the audio that will still play before frame c (it is cut off there)."""
        end = c * self.spf
        start = max(self._audio_pos, end - FADE_SAMPLES)
        if end <= start:
            return
        ramp = np.linspace(1.0, 0.0, end - start, endpoint=False)
        for s in range(start, end):
            k = s // self.spf
            plan = self._plans.get(k)
            if plan is None:
                continue
            if not plan.audio.flags.writeable or plan.audio.base is not None:
                plan.audio = plan.audio.copy()
            off = s - k * self.spf
            plan.audio[off] = int(plan.audio[off] * ramp[s - start])

    def _prune(self) -> None:
        floor = min(self._audio_pos // self.spf, self._video_next) - 2
        for k in [k for k in self._plans if k < floor]:
            del self._plans[k]
        while len(self._pushes) > 1 and self._pushes[1].frame <= floor:
            self._pushes.popleft()
