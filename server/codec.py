"""The VP8 encoder of live sessions: aiortc's, tuned for rendered (not filmed) frames.

* ``noise-sensitivity=0``: aiortc turns on libvpx's temporal denoiser, which is meant for camera noise;
  on rendered frames it costs encode time and sharpness.
* ``static-thresh=400``: most of a rendered frame (background, body, and in idle the whole face for two
  frames out of three, see ``render.reuse.ReusingRenderer``) is bit-identical to the previous one, so
  blocks that differ by less than a summed 400 (about 1.5 gray levels a pixel) are skipped.
* Reopening: aiortc reopens the encoder (a new keyframe, rate control from scratch) whenever the
  receiver's bitrate estimate moves by 10 %, which a ramping estimate does every few frames. Here a
  falling estimate (congestion) still reopens at once when it drops by a quarter, a rising or wobbling
  one at most every ``REOPEN_MIN_S``.

Everything else (realtime deadline, CBR at aiortc's target bitrate, which follows the receiver's
estimates) stays as aiortc sets it. aiortc picks encoders with ``aiortc.rtcrtpsender.get_encoder``;
``install()`` wraps that function once per process so that VP8 tracks get ``LiveVp8Encoder`` (other
codecs are untouched).

Kept off the event loop: the render workers build each frame's ``VideoFrame`` with ``video_frame`` in their
own thread, so the loop only stamps it; the audio track hands aiortc Opus packets (``OpusPackets``), so
aiortc neither resamples nor encodes audio (nor computes the RFC 6465 level it sends only with frames).
Figures: docs/server.md.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from fractions import Fraction
from typing import Any

import numpy as np

ENCODER_OPTIONS = {"noise-sensitivity": "0", "static-thresh": "400"}
"""libvpx options that differ from aiortc's."""
REOPEN_MIN_S = 10.0
"""Least time between two encoder reopens for a bitrate that rose or moved by less than a quarter."""

_installed = False
_lock = threading.Lock()


def _encoder_class() -> type:
    import av
    from aiortc.codecs.vpx import Vp8Encoder, number_of_threads
    from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

    class LiveVp8Encoder(Vp8Encoder):  # type: ignore[misc]
        """``Vp8Encoder`` that opens libvpx with ``ENCODER_OPTIONS`` on top of aiortc's own, and
        reopens it for a new bitrate less often (see the module doc)."""

        _opened_at = 0.0

        def _needs_reopen(self, frame: Any) -> bool:
            c: Any = self.codec
            if c is None or frame.width != c.width or frame.height != c.height:
                return True
            rate = c.bit_rate or 1
            change = (self.target_bitrate - rate) / rate
            if change < -0.25:
                return True
            return abs(change) > 0.1 and time.monotonic() - self._opened_at >= REOPEN_MIN_S

        def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
            if frame.format.name != "yuv420p":
                frame = frame.reformat(format="yuv420p")
            if self._needs_reopen(frame):
                self.codec = self._open(frame.width, frame.height)
                self._opened_at = time.monotonic()
            if force_keyframe:
                frame.pict_type = av.video.frame.PictureType.I
            codec: Any = self.codec
            data = b"".join(bytes(p) for p in codec.encode(frame))
            payloads = self._packetize(data, self.picture_id)
            timestamp = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE)
            self.picture_id = (self.picture_id + 1) % (1 << 15)
            return payloads, timestamp

        def _open(self, width: int, height: int) -> Any:
            rate = int(self.target_bitrate)
            c = av.CodecContext.create("libvpx", "w")
            c.width, c.height = width, height
            c.bit_rate = rate
            c.pix_fmt = "yuv420p"
            c.gop_size = 3000
            c.qmin, c.qmax = 2, 56
            c.options = {
                "bufsize": str(rate),
                "cpu-used": "-6",
                "deadline": "realtime",
                "lag-in-frames": "0",
                "minrate": str(rate),
                "maxrate": str(rate),
                "overshoot-pct": "15",
                "partitions": "0",
                "undershoot-pct": "100",
                **ENCODER_OPTIONS,
            }
            c.thread_count = number_of_threads(width * height, multiprocessing.cpu_count())
            return c

    return LiveVp8Encoder


def video_frame(yuv: np.ndarray) -> Any:
    """A yuv420p ``av.VideoFrame`` holding a copy of the I420 image ``yuv`` (H * 3 / 2, W)."""
    from av import VideoFrame

    h, w = yuv.shape[0] * 2 // 3, yuv.shape[1]
    frame = VideoFrame(w, h, "yuv420p")
    y, u, v = frame.planes
    if w % 2 or h % 2 or y.line_size != w or u.line_size != w // 2 or v.line_size != w // 2:
        return VideoFrame.from_ndarray(yuv, format="yuv420p")  # padded rows: PyAV's own copy
    flat = yuv.reshape(-1)
    n, q = w * h, w * h // 4
    for plane, src in ((y, flat[:n]), (u, flat[n : n + q]), (v, flat[n + q : n + 2 * q])):
        np.frombuffer(memoryview(plane), np.uint8)[:] = src
    return frame


class OpusPackets:
    """A session's audio as Opus packets (mono, 48 kHz), encoded here instead of by aiortc (its encoder
    resamples every 20 ms frame to stereo and encodes it on a thread-pool hop, silence included).
    Digital silence costs nothing: after ``SILENCE_FLUSH`` silent frames (which carry the encoder's
    look-ahead out, so the next speech starts clean) and ``HANDOVER_FRAMES`` more (the cached packet of
    silence: a receiver whose jitter buffer hands a packet over once a few more have come, as aiortc's
    does after 4, gets the end of the speech at once), silence is sent as Opus DTX is in WebRTC: one
    packet every ``DTX_FRAMES`` frames, a frame without data (1 byte) that decoders conceal, as silence
    here, and no packet for the frames between (their RTP timestamps are skipped, as DTX skips them)."""

    SILENCE_FLUSH = 3
    HANDOVER_FRAMES = 4
    DTX_FRAMES = 20
    BITRATE = 96_000

    def __init__(self, sample_rate: int = 48_000, samples: int = 960) -> None:
        self.sample_rate = sample_rate
        self.samples = samples
        self._codec: Any = None
        self._silent = 0  # silent frames in a row
        self._silence: bytes | None = None  # what the encoder made of the last silent frame it saw
        self._dtx: bytes | None = None  # its TOC byte alone: a frame without data
        self._time_base = Fraction(1, sample_rate)

    def _encoder(self) -> Any:
        if self._codec is None:
            import av

            c = av.CodecContext.create("libopus", "w")
            c.format, c.layout, c.sample_rate = "s16", "mono", self.sample_rate
            c.bit_rate = self.BITRATE
            c.time_base = self._time_base
            c.options = {"application": "voip"}
            self._codec = c
        return self._codec

    def cached(self, pcm: np.ndarray) -> bytes | None:
        """The packet of a silent frame without encoding, when it is known: ``b""`` for none (a DTX frame
        between two that are sent); else None (``encode`` it)."""
        if pcm.any():
            self._silent = 0
            return None
        if self._silent < self.SILENCE_FLUSH or self._silence is None or self._dtx is None:
            return None
        k = self._silent - self.SILENCE_FLUSH - self.HANDOVER_FRAMES
        self._silent += 1
        if k < 0:
            return self._silence
        return self._dtx if k % self.DTX_FRAMES == 0 else b""

    def encode(self, pcm: np.ndarray) -> bytes:
        """One 20 ms frame (``samples`` int16) -> its Opus packet (thread-safe against ``cached`` of the
        next frame only in that order: call them one frame at a time)."""
        import av

        frame = av.AudioFrame(format="s16", layout="mono", samples=self.samples)
        frame.planes[0].update(np.ascontiguousarray(pcm, np.int16).tobytes())
        frame.sample_rate = self.sample_rate
        data = b"".join(bytes(p) for p in self._encoder().encode(frame))
        if not pcm.any():
            self._silent += 1
            self._silence = data
            if data:
                self._dtx = bytes([data[0] & 0xFC])  # code 0 (one frame), no frame data
        return data

    def packet(self, data: bytes, pts: int) -> Any:
        """An ``av.Packet`` of ``data`` stamped at sample ``pts`` (what aiortc's ``pack`` sends as is)."""
        import av

        pkt = av.Packet(data)
        pkt.pts = pts
        pkt.time_base = self._time_base
        return pkt


def install() -> None:
    """Make aiortc's senders use ``LiveVp8Encoder`` for VP8 (idempotent, process-wide)."""
    global _installed
    with _lock:
        if _installed:
            return
        import aiortc.rtcrtpsender as sender

        original = sender.get_encoder
        cls = _encoder_class()

        def get_encoder(codec: Any) -> Any:
            if codec.mimeType.lower() == "video/vp8":
                return cls()
            return original(codec)

        sender.get_encoder = get_encoder
        _installed = True
