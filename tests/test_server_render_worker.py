"""A live session's render thread keeps rendering after a render that stalled (a loaded machine, a decoder
reopened), instead of judging every later frame too late to try."""

from __future__ import annotations

import time

import numpy as np
import pytest

from server import render_worker
from server.clock import MediaClock
from server.metrics import Metrics
from server.render_worker import RenderWorker
from server.timeline import Timeline, make_segment
from talker.stages import Drawn, FaceRig, Phone, Speech

FPS = 25
SIZE = 64


class StallsOnce:
    """A renderer whose fifth frame takes 0.8 s (twenty frame periods); the others are instant."""

    def __init__(self) -> None:
        self.calls = 0

    def render(
        self, values: np.ndarray, index: int, listening: bool = False, fresh: bool = False
    ) -> tuple[np.ndarray, float, Drawn]:
        self.calls += 1
        if self.calls == 5:
            time.sleep(0.8)
        return np.full((SIZE * 3 // 2, SIZE), 128, np.uint8), 0.0, Drawn.WHOLE

    def still_frames(self) -> None:
        return None


class StillPicture:
    """A renderer whose every frame after the first is the first image again (nothing moves)."""

    def render(
        self, values: np.ndarray, index: int, listening: bool = False, fresh: bool = False
    ) -> tuple[np.ndarray, float, Drawn]:
        return np.full((SIZE * 3 // 2, SIZE), 128, np.uint8), 0.0, Drawn.REUSED

    def still_frames(self) -> None:
        return None


def test_a_speaking_frame_is_sent_even_when_its_picture_did_not_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_worker, "renderer_for", lambda face, fps=None: StillPicture())
    monkeypatch.setattr(render_worker, "face_size", lambda face: (SIZE, SIZE))
    clock = MediaClock(FPS)
    tl = Timeline(FPS, 22050, seed=1)
    n = 22050
    speech = Speech(0.3 * np.sin(np.arange(n) / 3.0).astype(np.float32), 22050, (Phone(0.0, 1.0, "AA"),))
    assert tl.push_segment(make_segment(speech, FPS, 1, tl.epoch, True, time.monotonic()))
    worker = RenderWorker("test-render", FaceRig.__new__(FaceRig), tl, clock, 2, Metrics())
    clock.start()
    worker.start()
    seen: dict[int, bool] = {}
    try:
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end:
            for k in range(clock.frame_at(time.monotonic()), clock.frame_at(time.monotonic()) + 3):
                for g in range(4):
                    f = worker.get(k, g)
                    if f is not None and k not in seen:
                        seen[k] = f.speaking
                        if k > 0:
                            assert not (f.speaking and f.repeat), f"speaking frame {k} is a repeat"
            time.sleep(0.01)
    finally:
        worker.stop()
        worker.join(5)
    assert worker.error is None
    assert any(seen.values()) and not all(seen.values()), "speaking and idle frames were rendered"


def test_rendering_goes_on_after_a_render_that_stalled(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = StallsOnce()
    monkeypatch.setattr(render_worker, "renderer_for", lambda face, fps=None: stub)
    monkeypatch.setattr(render_worker, "face_size", lambda face: (SIZE, SIZE))
    clock = MediaClock(FPS)
    worker = RenderWorker("test-render", FaceRig.__new__(FaceRig), Timeline(FPS, 22050, seed=1), clock, 2, Metrics())
    clock.start()
    worker.start()
    try:
        time.sleep(2.5)
        k = clock.frame_at(time.monotonic())
        ready = [j for j in range(k, k + 3) if any(worker.get(j, g) is not None for g in range(4))]
    finally:
        worker.stop()
        worker.join(5)
    assert worker.error is None
    assert stub.calls > 20, "frames were rendered after the stall"
    assert ready, "the frames about to be sent are rendered"
