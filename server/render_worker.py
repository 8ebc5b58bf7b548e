"""A live session's render thread: keeps the frames from the send clock to ``lead`` frames ahead rendered
(a portrait's warp or a video avatar's loop -> I420, with the provenance mark, label and debug markers) in a
small store the video track reads. Frames whose time has passed are not rendered."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from server import markers
from server.clock import MediaClock
from server.codec import video_frame
from server.frame_memo import FrameMemo, FrameSource, RenderFn
from server.metrics import Metrics
from server.render_pool import SLOTS, Face, RenderProcess, face_size, renderer_for
from server.timeline import Timeline
from talker.provenance import Label, Marker
from talker.stages import StillFrames

log = logging.getLogger("talker.server")

LATE_GRACE_FRAMES = 0.5
"""How long past its time the video track waits for a frame still being rendered (in frame periods)."""
REPEAT_MAX_FRAMES = 4
"""A frame whose image is the one before it again is a repeat, which the video track does not send (the
receiver keeps showing the last image); at least every this many frames one is sent all the same: a
receiver that lost a packet of a still picture gets it again soon, and one that hands a frame over only
when the next arrives (aiortc's jitter buffer) shows it at most this many frames late."""


@dataclass(frozen=True)
class RenderedFrame:
    index: int
    generation: int
    video: Any  # av.VideoFrame (yuv420p), built off the event loop; sent once, then only read
    speaking: bool
    repeat: bool = False  # ``video`` is the frame before's (the same object): nothing moved, nothing to send


class RenderWorker(threading.Thread):
    """Renders frames [send clock, send clock + lead] of the timeline into I420 images."""

    def __init__(
        self,
        name: str,
        face: Face,
        timeline: Timeline,
        clock: MediaClock,
        lead: int,
        metrics: Metrics,
        debug_markers: bool = False,
        process: RenderProcess | None = None,
        watermark: Marker | None = None,
        label: Label | None = None,
        memo: FrameMemo | None = None,
    ) -> None:
        """``face``: a portrait's rig or a video avatar. ``process``: render there (see ``server.render_pool``);
        None renders in this thread.
        ``watermark``: the session's provenance mark, added to every frame's luma (None: unmarked;
        the audio track marks the session's audio with it too);
        ``label``: a visible disclosure drawn in every frame's luma.
        ``memo``: the portrait's listening frames, kept for the idle loop's next round (None: none kept)."""
        super().__init__(name=name, daemon=True)
        self.face = face
        self.process = process
        self.timeline = timeline
        self.clock = clock
        self.lead = lead
        self.metrics = metrics
        self.debug_markers = debug_markers
        self.watermark = watermark
        self.label = label
        self.memo = memo
        self.source: FrameSource | None = None
        self._store: dict[int, RenderedFrame] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop_event = threading.Event()
        self.frames_rendered = 0
        self.error: BaseException | None = None
        self.patient = False  # set while the session takes audio (frames_to_render's ``push_to``)
        self._cpu_start: tuple[float, float] | None = None  # (monotonic time, render process CPU s) at start

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

    def render_cpu_cores(self) -> float | None:
        """Cores the session's render process has used since the session started (None: it renders in
        this thread, or the figure cannot be read)."""
        if self.process is None or self._cpu_start is None:
            return None
        cpu = self.process.cpu_seconds()
        elapsed = time.monotonic() - self._cpu_start[0]
        if cpu is None or elapsed < 0.5:
            return None
        return (cpu - self._cpu_start[1]) / elapsed

    def run(self) -> None:
        if self.process is not None:
            cpu = self.process.cpu_seconds()
            self._cpu_start = None if cpu is None else (time.monotonic(), cpu)
        try:
            self._loop()
        except Exception as e:  # noqa: BLE001 - reported in the session status and the log, then the thread ends
            self.error = e
            log.exception("render worker %s failed", self.name)

    def _renderer(self) -> tuple[RenderFn, StillFrames | None]:
        """(the render call, see ``RenderFn``; what tells the frames it would reuse from their values, None
        where none are). The image is the renderer's own (a render slot, or the in-thread renderer's last
        image): read it before the next call."""
        if self.process is not None:
            still = self.process.load(self.face, self.clock.fps)
            return self.process.render, still
        renderer = renderer_for(self.face, self.clock.fps)
        return (
            lambda slot, values, index, listening, fresh: renderer.render(values, index, listening, fresh)
        ), renderer.still_frames()

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
        render, still = self._renderer()
        source = self.source = FrameSource(render, still, self.memo)
        w = face_size(self.face)[0]
        slot = 0
        took = 0.02  # running estimate of one render (s)
        prev: RenderedFrame | None = None  # the frame rendered before, in render order
        built = -REPEAT_MAX_FRAMES  # index of the last frame given a VideoFrame of its own
        spoke = -REPEAT_MAX_FRAMES  # index of the last speaking frame
        while not self._stop_event.is_set():
            self._wake.clear()
            # before the peer connects, the first frames are already known (idle): render them now
            # so the stream starts without a hiccup
            now = time.monotonic()
            now_k = self.clock.frame_at(now) if self.clock.started else 0
            tl = self.timeline
            hi = now_k + self.lead
            # (at most ``hi``: a render that stalled once must not make every frame look too late to try,
            # or the estimate would never be measured again)
            lo = min(self._first_useful(now, now_k, took), hi)
            # streamed audio: only the next frame is computed ahead of its audio (on silence if none came),
            # so the others wait for the audio the lip-sync model looks ahead into
            push_to = lo + 1 if self.patient else None
            todo = [p for p in tl.frames_to_render(lo, hi, push_to) if self.get(p.index, p.generation) is None]
            if todo:
                p = todo[0]
                assert p.values is not None
                t0 = time.monotonic()
                got = source.next(slot, p.values, p.index, p.speaking)
                reused = got.reused
                if not reused and not got.recalled:  # (the estimate is of a frame drawn anew)
                    took = 0.8 * took + 0.2 * (time.monotonic() - t0)
                slot = (slot + 1) % SLOTS
                if p.speaking:
                    spoke = p.index
                # a speaking frame is always sent, and so are the few after speech: a receiver that hands a
                # frame over when the next one arrives (aiortc's jitter buffer) shows speech's end at once
                repeat = (
                    reused
                    and p.index - spoke > REPEAT_MAX_FRAMES
                    and prev is not None
                    and (prev.index, prev.generation, prev.speaking) == (p.index - 1, p.generation, p.speaking)
                    and p.index - built < REPEAT_MAX_FRAMES
                )
                if repeat:
                    assert prev is not None
                    frame = RenderedFrame(p.index, p.generation, prev.video, p.speaking, repeat=True)
                else:
                    frame = RenderedFrame(p.index, p.generation, self._video(got.image, p, w), p.speaking)
                    built = p.index
                if got.recalled:
                    self.metrics.frames_recalled.inc()
                elif reused:
                    self.metrics.frames_reused.inc()
                else:
                    self.metrics.render_frame.observe(got.seconds)
                with self._lock:
                    self._store[p.index] = frame
                    for k in [k for k in self._store if k < now_k - 1]:
                        del self._store[k]
                prev = frame
                self.frames_rendered += 1
                continue
            if not self.clock.started:
                self._wake.wait(0.01)
                continue
            wait = self.clock.time_of_frame(now_k + 1) - time.monotonic()
            self._wake.wait(max(0.0, min(wait, 0.1)) + 0.0005)

    def _video(self, image: np.ndarray, p: Any, w: int) -> Any:
        """The ``VideoFrame`` of frame plan ``p`` showing ``image`` (kept as is) with the label, the
        provenance mark and the debug markers."""
        yuv = image.copy() if self.debug_markers or self.watermark is not None or self.label is not None else image
        luma = yuv[: yuv.shape[0] * 2 // 3]
        if self.label is not None:
            self.label.draw(luma)
        if self.watermark is not None:
            self.watermark.pixels.mark(luma, out=luma)
        if self.debug_markers:
            markers.stamp(yuv, w, p.index, p.speaking, markers.lips_apart(p.values))
        return video_frame(yuv)
