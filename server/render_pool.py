"""Render processes: each live session renders its frames in a process of its own.

Why processes: the warp renderer is numpy + OpenCV with many short calls that hold the GIL, so two
sessions rendering in threads of one process serialize on it. Measured here (2 cores): with two
sessions in threads, 60% of frames missed their send time while the process used only 1.2 cores.
A render process gets its face once (a portrait's rig, or a video avatar's folder, which it loads
itself), then per frame the channel values and the frame's index over a pipe, and writes the I420 image
into a shared-memory slot; the session's render thread only waits (GIL released) and copies the slot out.

Processes are started with ``spawn`` (the server process has threads: forking it is unsafe) and
kept warm in a pool, so opening a session does not pay the ~1 s start-up of a Python process.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from talker.avatar_player import REWIND_FRAMES, VideoAvatar, VideoAvatarRenderer
from talker.stages import Drawn, FaceRig, ReusingRenderer, StillFrames, WarpRenderer, reuse_px

log = logging.getLogger("talker.server")

SLOTS = 4
"""Shared-memory frame slots per process; the session copies a slot out before reusing it."""


class RenderProcessError(RuntimeError):
    """A render process died or answered with an error."""


Face = FaceRig | VideoAvatar
"""What a session shows: a portrait's rig, or a prepared video avatar."""


def face_size(face: Face) -> tuple[int, int]:
    """(width, height) of a face's frames."""
    if isinstance(face, VideoAvatar):
        return face.size
    h, w = face.image.shape[:2]
    return w, h


class FrameRenderer(Protocol):
    def render(
        self, values: np.ndarray, index: int, listening: bool = False, fresh: bool = False
    ) -> tuple[np.ndarray, float, Drawn]: ...

    def still_frames(self) -> StillFrames | None: ...


class I420Renderer:
    """A rig's warp renderer with I420 output (what the VP8 encoder takes). A frame in which nothing
    moved enough to draw anew (``render.reuse.ReusingRenderer``) is the last image again, conversion
    included; one in which only the eyes moved draws only their box. Used in the render processes and by
    a session that renders in its own thread."""

    def __init__(self, rig: FaceRig) -> None:
        self.renderer = ReusingRenderer(WarpRenderer(rig))
        self._last: np.ndarray | None = None

    def render(
        self, values: np.ndarray, index: int = 0, listening: bool = False, fresh: bool = False
    ) -> tuple[np.ndarray, float, Drawn]:
        """(I420 image: the renderer's own, do not modify it; render seconds; how it was made: ``REUSED``,
        the last image again). ``index`` (the session's frame index) is not used: a portrait's frame depends
        on ``values`` only. ``listening``: an idle frame, reused while nothing moved ``reuse_px(listening)``.
        ``fresh``: the frame shown last was not this renderer's (the session's memo of its idle loop gave
        it), so this one is drawn whole."""
        t0 = time.perf_counter()
        if fresh:
            self.renderer.forget()
            self._last = None
        rgb, drawn = self.renderer.render(values, reuse_px(listening))
        if drawn is not Drawn.REUSED or self._last is None:
            self._last = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420))
        return self._last, time.perf_counter() - t0, drawn

    def still_frames(self) -> StillFrames:
        """What tells this renderer's reused frames from the values alone, for the session's render worker."""
        return StillFrames(self.renderer.gains, self.renderer.renderer.eye_w)


class VideoI420Renderer:
    """A video avatar played for a live session: every frame is the loop's next one (idle frames too, so
    the loop plays while silent), its mouth redrawn while ``values`` speak. A frame index at or before one
    already rendered (the session renders a few frames ahead and renders them anew when speech starts or
    is interrupted) shows the loop frames those had again, so the loop never jumps; frames the session
    skips (too late to send) do not advance it."""

    def __init__(self, avatar: VideoAvatar, fps: float | None = None) -> None:
        self.renderer = VideoAvatarRenderer(avatar, fps)
        self._rendered: deque[int] = deque(maxlen=REWIND_FRAMES)  # session frame indices, in render order

    def render(
        self, values: np.ndarray, index: int, listening: bool = False, fresh: bool = False
    ) -> tuple[np.ndarray, float, Drawn]:
        """(I420 image, a new array; render seconds; ``WHOLE``: every frame is drawn anew, ``fresh`` or not)."""
        t0 = time.perf_counter()
        again = 0
        while self._rendered and self._rendered[-1] >= index:
            self._rendered.pop()
            again += 1
        self.renderer.rewind(again)
        self._rendered.append(index)
        yuv = self.renderer.render_i420(values)
        return yuv, time.perf_counter() - t0, Drawn.WHOLE

    def still_frames(self) -> None:
        """None: a video avatar's frames always move."""
        return None


def renderer_for(face: Face, fps: float | None = None) -> FrameRenderer:
    """The I420 renderer of a portrait's rig or a video avatar (in this process; its loop played at ``fps``,
    default its own rate)."""
    if isinstance(face, VideoAvatar):
        return VideoI420Renderer(face, fps)
    return I420Renderer(face)


def _serve(
    conn: Connection, shm_name: str, shape: tuple[int, int], slots: int, cv_threads: int, nice: int = 0
) -> None:
    """The render process: a rig or a video avatar's folder -> its renderer; per request, render into a slot."""
    if nice > 0:  # the server process (speech, encoding, WebRTC) goes first when the cores are short
        os.nice(nice)
    if cv_threads:
        cv2.setNumThreads(cv_threads)
    shm = SharedMemory(name=shm_name)
    frames: np.ndarray = np.ndarray((slots, *shape), np.uint8, buffer=shm.buf)
    renderer: FrameRenderer | None = None
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            kind = msg[0]
            try:
                if kind == "render":
                    _, slot, values, index, listening, fresh = msg
                    if renderer is None:
                        raise RuntimeError("no face loaded")
                    yuv, seconds, drawn = renderer.render(values, index, listening, fresh)
                    if drawn is not Drawn.REUSED:  # (a reused image is the one sent last: the session kept it)
                        frames[slot] = yuv
                    conn.send(("done", seconds, drawn.value))
                elif kind in ("rig", "video"):
                    renderer = None
                    face: Face = msg[1] if kind == "rig" else VideoAvatar(msg[1])
                    fps = msg[2] if len(msg) > 2 else None
                    w, h = face_size(face)
                    if (h * 3 // 2, w) != shape:
                        raise ValueError(f"the face is {w}x{h}; this process renders {shape[1]}x{shape[0] * 2 // 3}")
                    renderer = renderer_for(face, fps)
                    still = renderer.still_frames()
                    conn.send(("ok",) if still is None else ("ok", still.gains, still.eye_w))
                elif kind == "ping":
                    conn.send(("ok",))
                elif kind == "reset":
                    renderer = None
                    conn.send(("ok",))
                elif kind == "stop":
                    return
            except Exception as e:  # noqa: BLE001 - sent back to the session, which reports it
                conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        del frames
        shm.close()


class RenderProcess:
    """One warm render process with its shared-memory slots. Used by one session at a time."""

    def __init__(self, ctx: Any, shape: tuple[int, int], cv_threads: int, nice: int = 0) -> None:
        self.shape = shape
        nbytes = SLOTS * shape[0] * shape[1]
        self.shm = SharedMemory(create=True, size=nbytes)
        self.frames: np.ndarray = np.ndarray((SLOTS, *shape), np.uint8, buffer=self.shm.buf)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_serve,
            args=(child, self.shm.name, shape, SLOTS, cv_threads, nice),
            name="talker-render",
            daemon=True,
        )
        self.proc.start()
        child.close()
        self._lock = threading.Lock()

    def _call(self, msg: tuple[Any, ...], timeout: float) -> tuple[Any, ...]:
        with self._lock:
            try:
                self.conn.send(msg)
                if not self.conn.poll(timeout):
                    raise RenderProcessError(f"render process gave no answer in {timeout:g} s")
                reply: tuple[Any, ...] = self.conn.recv()
            except (EOFError, OSError, BrokenPipeError) as e:
                raise RenderProcessError(f"render process died (exit code {self.proc.exitcode})") from e
        if reply[0] == "error":
            raise RenderProcessError(f"render process failed: {reply[1]}")
        return reply

    def load(self, face: Face, fps: float | None = None) -> StillFrames | None:
        """Load a portrait's rig (sent whole) or a video avatar (the process loads its folder and plays it at
        ``fps``). Returns what tells the frames the process would reuse from their values (None: a video
        avatar, whose frames always move)."""
        if isinstance(face, VideoAvatar):
            reply = self._call(("video", str(Path(face.folder).resolve()), fps), timeout=60.0)
        else:
            reply = self._call(("rig", face), timeout=60.0)
        return StillFrames(reply[1], reply[2]) if len(reply) > 2 else None

    def render(
        self, slot: int, values: np.ndarray, index: int, listening: bool = False, fresh: bool = False
    ) -> tuple[np.ndarray, float, Drawn]:
        """Render ``values`` (frame ``index`` of the session; ``listening``: an idle frame; ``fresh``: the
        frame shown last was not this process's, so it draws anew) into ``slot``;
        returns the slot's I420 image (a view: valid until this slot is rendered into again), the render
        seconds, and how the frame was made (``REUSED``: nothing moved enough to draw anew, see
        ``I420Renderer``; the slot is then not written, and the caller uses the image it was last given)."""
        msg = ("render", slot, np.asarray(values, np.float32), int(index), bool(listening), bool(fresh))
        reply = self._call(msg, timeout=10.0)
        return self.frames[slot], float(reply[1]), Drawn(reply[2])

    def cpu_seconds(self) -> float | None:
        """CPU seconds the process has used (user + system, from /proc; None where that cannot be read)."""
        import os

        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def ping(self, timeout: float = 60.0) -> None:
        """Wait until the process has started and imported the renderer."""
        self._call(("ping",), timeout=timeout)

    def reset(self) -> None:
        self._call(("reset",), timeout=10.0)

    @property
    def alive(self) -> bool:
        return bool(self.proc.is_alive())

    def stop(self) -> None:
        try:
            with self._lock:
                self.conn.send(("stop",))
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():  # pragma: no cover - stuck in a render
            self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()
        del self.frames
        self.shm.close()
        self.shm.unlink()


class RenderPool:
    """Warm render processes for frames of ``size`` x ``size``; sessions lease one each."""

    def __init__(self, size: int, warm: int, cv_threads: int = 1, nice: int = 0) -> None:
        self.shape = (size * 3 // 2, size)
        self.cv_threads = cv_threads
        self.nice = nice
        self._ctx = mp.get_context("spawn")
        self._free: list[RenderProcess] = []
        self._all: list[RenderProcess] = []
        self._lock = threading.Lock()
        self.warm = warm

    def start(self) -> None:
        """Start ``warm`` processes and wait until they have imported the renderer."""
        procs = [self._spawn() for _ in range(self.warm)]
        for p in procs:
            p.ping()
        with self._lock:
            self._free.extend(procs)

    def _spawn(self) -> RenderProcess:
        p = RenderProcess(self._ctx, self.shape, self.cv_threads, self.nice)
        with self._lock:
            self._all.append(p)
        return p

    def lease(self) -> RenderProcess:
        """A free process (a new one when all are in use). Blocking: call from a worker thread."""
        with self._lock:
            while self._free:
                p = self._free.pop()
                if p.alive:
                    return p
                self._all.remove(p)
        return self._spawn()

    def release(self, p: RenderProcess) -> None:
        """Give a process back (its rig is dropped); a broken one is stopped instead."""
        try:
            p.reset()
        except RenderProcessError:
            self._discard(p)
            return
        with self._lock:
            self._free.append(p)

    def _discard(self, p: RenderProcess) -> None:
        with self._lock:
            if p in self._all:
                self._all.remove(p)
        p.stop()

    @property
    def size(self) -> int:
        return len(self._all)

    def shutdown(self) -> None:
        with self._lock:
            procs, self._all, self._free = list(self._all), [], []
        for p in procs:
            p.stop()
