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
from server.timeline import Timeline
from talker.stages import Drawn, FaceRig

FPS = 25
SIZE = 64


class StallsOnce:
    """A renderer whose fifth frame takes 0.8 s (twenty frame periods); the others are instant."""

    def __init__(self) -> None:
        self.calls = 0

    def render(self, values: np.ndarray, index: int, listening: bool = False) -> tuple[np.ndarray, float, Drawn]:
        self.calls += 1
        if self.calls == 5:
            time.sleep(0.8)
        return np.full((SIZE * 3 // 2, SIZE), 128, np.uint8), 0.0, Drawn.WHOLE

    def still_frames(self) -> None:
        return None


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
