"""A live session's two worker threads; the event loop only schedules, these do the CPU work.

* ``SpeechWorker``: say requests (bounded queue) -> sentences -> Piper (shared, serialized) ->
  48 kHz segments -> ``Timeline.push_segment`` (bounded: blocks while 2 segments wait).
* ``RenderWorker``: keeps the frames from the send clock to ``lead`` frames ahead rendered (warp ->
  I420), in a small store the video track reads. Frames whose time has passed are not rendered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from server import markers
from server.clock import MediaClock
from server.engine import SharedTTS
from server.metrics import Metrics
from server.render_pool import SLOTS, RenderProcess
from server.timeline import Timeline, make_segment, trim_leading_silence
from talker.stages import FaceRig, TextError, TTSError, WarpRenderer, split_sentences

log = logging.getLogger("talker.server")

LATE_GRACE_FRAMES = 0.5
"""How long past its time the video track waits for a frame still being rendered (in frame periods)."""


@dataclass(frozen=True)
class SayRequest:
    utterance: int
    text: str
    epoch: int
    said_at: float


@dataclass(frozen=True)
class RenderedFrame:
    index: int
    generation: int
    yuv: np.ndarray  # I420 (H * 3 / 2, W) uint8
    speaking: bool


MAX_PIECE_CHARS = 160


def speech_pieces(text: str, first_chars: int) -> list[str]:
    """Split text into the pieces synthesized one at a time: sentences, and long ones at clauses.

    The first piece is at most ``first_chars`` long where punctuation allows (speech starts sooner),
    and each later one may be twice as long as the one before (up to 160 characters): a piece is
    synthesized while the previous one plays, and Piper runs at 3-10x real time here, so doubling
    leaves no gaps while keeping sentences whole where it can.
    """
    out: list[str] = []
    cap = first_chars
    for sentence in split_sentences(text):
        parts = split_sentences(sentence, max_clause_chars=cap) if len(sentence) > cap else [sentence]
        for p in parts:
            out.append(p)
            cap = min(2 * cap, MAX_PIECE_CHARS)
    return out


class SpeechWorker(threading.Thread):
    """Turns say requests into timeline segments, one sentence at a time."""

    def __init__(
        self,
        name: str,
        tts: SharedTTS,
        timeline: Timeline,
        fps: float,
        piece_chars: int,
        maxsize: int,
        metrics: Metrics,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.tts = tts
        self.timeline = timeline
        self.fps = fps
        self.piece_chars = piece_chars
        self.metrics = metrics
        self.requests: queue.Queue[SayRequest | None] = queue.Queue(maxsize)
        self._stop_event = threading.Event()
        self.errors: list[str] = []
        self._current: SayRequest | None = None

    def submit(self, req: SayRequest) -> None:
        """Queue a request; raises ``queue.Full`` when ``maxsize`` are waiting."""
        self.requests.put_nowait(req)

    def clear(self) -> None:
        while True:
            try:
                self.requests.get_nowait()
            except queue.Empty:
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.clear()
        try:
            self.requests.put_nowait(None)
        except queue.Full:  # pragma: no cover - just cleared
            pass

    def run(self) -> None:
        while not self._stop_event.is_set():
            req = self.requests.get()
            if req is None:
                return
            if req.epoch != self.timeline.epoch:
                continue
            try:
                self._speak(req)
            except (TTSError, TextError, ValueError) as e:
                self.metrics.tts_errors.inc()
                self.errors = (self.errors + [f"utterance {req.utterance}: {e}"])[-5:]
                log.warning("session speech failed for utterance %d: %s", req.utterance, e)

    @property
    def busy(self) -> bool:
        """True while an utterance that was not interrupted is being synthesized."""
        cur = self._current
        return cur is not None and cur.epoch == self.timeline.epoch

    def _speak(self, req: SayRequest) -> None:
        self._current = req
        try:
            for i, piece in enumerate(speech_pieces(req.text, self.piece_chars)):
                if not self._speak_piece(req, i, piece):
                    return
        finally:
            self._current = None

    def _speak_piece(self, req: SayRequest, i: int, piece: str) -> bool:
        """Synthesize one piece and queue it; False when the utterance was interrupted."""
        if self._stop_event.is_set() or req.epoch != self.timeline.epoch:
            return False
        t0 = time.perf_counter()
        speech = self.tts.synthesize_live(piece)
        self.metrics.tts_piece.observe(time.perf_counter() - t0)
        if self._stop_event.is_set() or req.epoch != self.timeline.epoch:
            return False
        if i == 0:
            speech = trim_leading_silence(speech)
        seg = make_segment(speech, self.fps, req.utterance, req.epoch, i == 0, req.said_at)
        return self.timeline.push_segment(seg)


class RenderWorker(threading.Thread):
    """Renders frames [send clock, send clock + lead] of the timeline into I420 images."""

    def __init__(
        self,
        name: str,
        rig: FaceRig,
        timeline: Timeline,
        clock: MediaClock,
        lead: int,
        metrics: Metrics,
        debug_markers: bool = False,
        process: RenderProcess | None = None,
    ) -> None:
        """``process``: render there (see ``server.render_pool``); None renders in this thread."""
        super().__init__(name=name, daemon=True)
        self.rig = rig
        self.process = process
        self.timeline = timeline
        self.clock = clock
        self.lead = lead
        self.metrics = metrics
        self.debug_markers = debug_markers
        self._store: dict[int, RenderedFrame] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop_event = threading.Event()
        self.frames_rendered = 0
        self.error: BaseException | None = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()

    def get(self, k: int, generation: int) -> RenderedFrame | None:
        with self._lock:
            f = self._store.get(k)
        return f if f is not None and f.generation == generation else None

    @property
    def ahead(self) -> int:
        """Rendered frames waiting to be sent."""
        with self._lock:
            return len(self._store)

    def run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - reported in the session status and the log, then the thread ends
            self.error = e
            log.exception("render worker %s failed", self.name)

    def _renderer(self) -> Callable[[int, np.ndarray], tuple[np.ndarray, float]]:
        """slot, channel values -> (I420 image, render seconds)."""
        if self.process is not None:
            self.process.load(self.rig)
            return self.process.render
        renderer = WarpRenderer(self.rig)

        def render(slot: int, values: np.ndarray) -> tuple[np.ndarray, float]:
            t0 = time.perf_counter()
            yuv = cv2.cvtColor(renderer.render(values), cv2.COLOR_RGB2YUV_I420)
            return yuv, time.perf_counter() - t0

        return render

    def _first_useful(self, now: float, now_k: int, took: float) -> int:
        """The first frame that can still be rendered before the video track gives up on it: when
        the machine is overloaded, frames that would be late anyway are skipped, so the next ones
        are on time (instead of every frame arriving a little too late)."""
        if not self.clock.started:
            return now_k
        give_up = LATE_GRACE_FRAMES / self.clock.fps
        k = now_k
        while self.clock.time_of_frame(k) + give_up < now + took:
            k += 1
        return k

    def _loop(self) -> None:
        render = self._renderer()
        w = self.rig.size[0]
        slot = 0
        took = 0.02  # running estimate of one render (s)
        while not self._stop_event.is_set():
            self._wake.clear()
            # before the peer connects, the first frames are already known (idle): render them now
            # so the stream starts without a hiccup
            now = time.monotonic()
            now_k = self.clock.frame_at(now) if self.clock.started else 0
            tl = self.timeline
            lo = self._first_useful(now, now_k, took)
            hi = now_k + self.lead
            todo = [p for p in tl.frames_to_render(lo, hi) if self.get(p.index, p.generation) is None]
            if todo:
                p = todo[0]
                assert p.values is not None
                t0 = time.monotonic()
                yuv, seconds = render(slot, p.values)
                took = 0.8 * took + 0.2 * (time.monotonic() - t0)
                slot = (slot + 1) % SLOTS
                if self.debug_markers:
                    markers.stamp(yuv, w, p.index, p.speaking)
                self.metrics.render_frame.observe(seconds)
                with self._lock:
                    self._store[p.index] = RenderedFrame(p.index, p.generation, yuv, p.speaking)
                    for k in [k for k in self._store if k < now_k - 1]:
                        del self._store[k]
                self.frames_rendered += 1
                continue
            if not self.clock.started:
                self._wake.wait(0.01)
                continue
            wait = self.clock.time_of_frame(now_k + 1) - time.monotonic()
            self._wake.wait(max(0.0, min(wait, 0.1)) + 0.0005)
