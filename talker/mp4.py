"""MP4 sink: H.264 video + AAC audio through PyAV, one frame and its audio slice at a time.

Every file is marked as synthetic (``talker.provenance``): an invisible mark in each frame's pixels
and in the audio, and a signed C2PA manifest once the file is complete."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from talker.provenance import Label, Marker, marks_enabled, sign_mp4

DEFAULT_PRESET = "superfast"
"""x264 speed preset: on rendered frames, at crf 23 it costs less CPU than veryfast at crf 20 for a higher
Y-PSNR, in 1.6x the bits (``python -m benchmarks.bench_encode``)."""
DEFAULT_CRF = 23
"""x264 quality (lower is better and bigger, 0-51)."""


class Mp4Writer:
    """Write RGB frames and mono float32 audio to an MP4 file (H.264 yuv420p + AAC)."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        sample_rate: int,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        audio_bitrate: int = 128_000,
        marks: bool | None = None,
        output_id: int | None = None,
        label: str | None = None,
        opencv_i420: bool = False,
    ) -> None:
        """``marks``: False writes no provenance marks (None: on unless ``TALKER_PROVENANCE=off``);
        ``output_id``: the 32-bit id the marks carry (random when None); ``label``: visible text drawn
        in the bottom-left corner of every frame; ``opencv_i420``: RGB frames are converted to I420 by OpenCV
        (a sixth to a half of what libav's own conversion costs; its chroma is the 2x2 mean, where libav's
        filter gives slightly different chroma) instead of by libav."""
        if width % 2 or height % 2:
            raise ValueError(f"H.264 needs even dimensions, got {width}x{height}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.sample_rate = int(sample_rate)
        self._c = av.open(str(self.path), mode="w")
        self._v = self._c.add_stream("libx264", rate=self.fps)
        self._v.width = width
        self._v.height = height
        self._v.pix_fmt = "yuv420p"
        self._v.options = {"crf": str(crf), "preset": preset}
        self.opencv_i420 = opencv_i420
        self._a = self._c.add_stream("aac", rate=self.sample_rate)
        self._a.layout = "mono"
        self._a.bit_rate = audio_bitrate
        self._n_audio = 0
        self._n_video = 0
        on = marks_enabled() if marks is None else marks
        self.label = Label(label) if label else None
        self.marker: Marker | None = (Marker() if output_id is None else Marker(output_id)) if on else None

    def write_video(self, image: np.ndarray) -> None:
        """Write one RGB (H, W, 3) uint8 frame (labelled and marked on a copy)."""
        w, h = self._v.width, self._v.height
        if image.shape != (h, w, 3) or image.dtype != np.uint8:
            raise ValueError(f"an RGB frame of {w}x{h} is ({h}, {w}, 3) uint8, not {image.shape} {image.dtype}")
        if self.label is not None:
            image = self.label.draw(np.array(image, copy=True))
        if self.marker is not None:
            image = self.marker.pixels.mark(np.ascontiguousarray(image))
        image = np.ascontiguousarray(image)
        if self.opencv_i420:
            import cv2

            yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), np.uint8)
            self._encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p"))
        else:
            self._encode(av.VideoFrame.from_ndarray(image, format="rgb24"))

    def write_yuv(self, yuv: np.ndarray) -> None:
        """Write one I420 frame: ``yuv`` (H * 3 / 2, W) uint8, the luma rows then the two quarter-size
        chroma planes (as ``cv2.COLOR_RGB2YUV_I420`` makes it). Its luma is marked in place."""
        h = self._v.height
        if yuv.shape != (h * 3 // 2, self._v.width) or yuv.dtype != np.uint8:
            raise ValueError(f"an I420 frame of {self._v.width}x{h} is ({h * 3 // 2}, {self._v.width}) uint8")
        if self.label is not None:
            import cv2

            rgb = self.label.draw(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420))
            yuv[:] = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
        if self.marker is not None:
            self.marker.pixels.mark(yuv[:h], out=yuv[:h])
        self._encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p"))

    def _encode(self, frame: av.VideoFrame) -> None:
        frame.pts = self._n_video
        frame.time_base = 1 / self.fps
        self._n_video += 1
        for pkt in self._v.encode(frame):
            self._c.mux(pkt)

    def write_audio(self, samples: np.ndarray) -> None:
        if len(samples) == 0:
            return
        if self.marker is not None:
            samples = self.marker.audio(samples, self.sample_rate)
        pcm = np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._n_audio
        frame.time_base = Fraction(1, self.sample_rate)
        self._n_audio += pcm.shape[1]
        for pkt in self._a.encode(frame):
            self._c.mux(pkt)

    def close(self) -> None:
        if self._c is None:
            return
        for pkt in self._v.encode(None):
            self._c.mux(pkt)
        for pkt in self._a.encode(None):
            self._c.mux(pkt)
        self._c.close()
        self._c = None  # type: ignore[assignment]
        if self.marker is not None:
            sign_mp4(self.path, self.marker.output_id)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class BackgroundWriter:
    """Encodes (audio, frame: RGB (H, W, 3) or I420 (H * 3 / 2, W)) pairs on a worker thread behind a
    bounded queue (x264 releases the GIL, so encoding overlaps the rendering of the next frames). A frame
    put must not be written to afterwards."""

    def __init__(self, writer: Mp4Writer, depth: int = 4) -> None:
        self.writer = writer
        self.seconds = 0.0
        self._q: queue.Queue[tuple[np.ndarray, np.ndarray] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._work, name="mp4-encode", daemon=True)
        self._t.start()

    def _work(self) -> None:
        while (item := self._q.get()) is not None:
            if self._error is not None:
                continue
            t0 = time.perf_counter()
            try:
                self.writer.write_audio(item[0])
                if item[1].ndim == 3:
                    self.writer.write_video(item[1])
                else:
                    self.writer.write_yuv(item[1])
            except BaseException as e:  # raised in the caller's thread
                self._error = e
            self.seconds += time.perf_counter() - t0

    def put(self, audio: np.ndarray, image: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._q.put((audio, image))

    def abort(self) -> None:
        """Stop without encoding what is queued."""
        self._error = self._error or RuntimeError("encoding stopped")
        self._q.put(None)
        self._t.join()

    def finish(self) -> None:
        self._q.put(None)
        self._t.join()
        if self._error is not None:
            raise self._error


@contextmanager
def mp4_output(
    out: str | Path, width: int, height: int, fps: float, sample_rate: int, **writer_options: Any
) -> Iterator[BackgroundWriter]:
    """An MP4 encoded on a worker thread (``BackgroundWriter``; ``writer_options`` go to ``Mp4Writer``, whose
    RGB frames OpenCV converts unless they say otherwise) that appears at ``out`` only when complete:
    written beside it and renamed; removed on any error."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.part.mp4")
    try:
        options = {"opencv_i420": True, **writer_options}
        with Mp4Writer(tmp, width, height, fps, sample_rate, **options) as writer:
            background = BackgroundWriter(writer)
            try:
                yield background
            except BaseException:
                background.abort()
                raise
            background.finish()
        tmp.replace(out)
    finally:
        if tmp.exists():
            tmp.unlink()


def frame_audio(samples: np.ndarray, k: int, sample_rate: int, fps: float) -> np.ndarray:
    """The samples that play during video frame ``k``."""
    return samples[int(round(k * sample_rate / fps)) : int(round((k + 1) * sample_rate / fps))]
