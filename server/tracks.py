"""The two WebRTC tracks of a live session, paced by one media clock.

Audio: 20 ms frames (960 samples, s16 mono, 48 kHz) as Opus packets (``codec.OpusPackets``: silence is
DTX, a 1-byte packet every 400 ms). Video: one I420 frame per 1/fps (aiortc encodes VP8); a frame whose
image is the one sent before (idle, nothing moved: the render worker marks it a repeat) is not sent at all.
Both are stamped from the same sample counter (``pts`` in 1/48000 s units), and both are handed
to aiortc when the clock reaches their time, so the RTCP sender reports of the two streams map to the
same wall clock: the receiver can line them up. The tracks never compute anything heavy: audio comes
from the timeline, images from the render worker's store. A frame that is not rendered in time is
replaced by the previous one (counted as late) rather than delaying the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import Packet, VideoFrame

from server import markers
from server.codec import OpusPackets, video_frame
from server.render_worker import LATE_GRACE_FRAMES
from server.settings import AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE

if TYPE_CHECKING:
    from server.session import Session

TIME_BASE = Fraction(1, AUDIO_SAMPLE_RATE)
MAX_AUDIO_LAG_S = 0.2
"""An audio sender this far behind the clock (event loop stalled) skips ahead instead of bursting."""
MAX_VIDEO_LAG_FRAMES = 3


async def _pace(n: int, delay_s: float, max_lag_s: float, current: Callable[[], int]) -> tuple[int, int]:
    """Both tracks are paced by the session clock: wait ``delay_s`` until unit ``n`` is due; when it is
    more than ``max_lag_s`` late, jump to the ``current`` unit instead. Returns (unit to send, units skipped)."""
    if delay_s > 0:
        await asyncio.sleep(delay_s)
        return n, 0
    if -delay_s > max_lag_s:
        now_n = current()
        return now_n, now_n - n
    return n, 0


FIRST_FRAME_WAIT_S = 1.0


class AvatarAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._s = session
        self._next: int | None = None
        self.frames_sent = 0
        self._opus = OpusPackets(AUDIO_SAMPLE_RATE, AUDIO_FRAME_SAMPLES)

    async def recv(self) -> Packet:  # type: ignore[override]
        """The next 20 ms as an Opus packet (aiortc sends a packet as it is: see ``OpusPackets``); frames of
        silence between two DTX packets send nothing: the next packet is the next one sent."""
        while True:
            pkt = await self._next_packet()
            if pkt is not None:
                return pkt

    async def _next_packet(self) -> Packet | None:
        if self.readyState != "live":
            raise MediaStreamError
        s = self._s
        clock = s.clock
        clock.start()
        now = time.monotonic()
        if self._next is None:
            self._next = max(0, int(np.ceil(clock.sample_at(now) / AUDIO_FRAME_SAMPLES)))
        n, skipped = await _pace(
            self._next,
            clock.time_of_sample(self._next * AUDIO_FRAME_SAMPLES) - now,
            MAX_AUDIO_LAG_S,
            lambda: int(np.ceil(clock.sample_at(now) / AUDIO_FRAME_SAMPLES)),
        )
        if skipped:
            s.metrics.audio_skipped.inc(skipped)
        if self.readyState != "live":
            raise MediaStreamError
        pcm = s.timeline.take_audio(n * AUDIO_FRAME_SAMPLES, AUDIO_FRAME_SAMPLES)
        mark = s.renderer.watermark
        if mark is not None and pcm.any():  # (the mark follows the speech level: silence stays silent)
            x = mark.audio(pcm.astype(np.float32) / 32768.0, AUDIO_SAMPLE_RATE, n * AUDIO_FRAME_SAMPLES)
            pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
        data = self._opus.cached(pcm)
        if data is None:
            data = await asyncio.get_running_loop().run_in_executor(None, self._opus.encode, pcm)
        self._next = n + 1
        if not data:
            return None
        self.frames_sent += 1
        s.metrics.audio_frames.inc()
        return self._opus.packet(data, n * AUDIO_FRAME_SAMPLES)


class AvatarVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._s = session
        self._next: int | None = None
        self._last: VideoFrame | None = None  # the last frame sent
        self.frames_sent = 0
        self.frames_late = 0
        self.frames_repeated = 0  # not sent: the image of the frame sent before
        self._t_first: float | None = None

    def fps(self) -> float:
        """Frames shown per second since the first one: handed to WebRTC, or repeats of the last one."""
        shown = self.frames_sent + self.frames_repeated
        if self._t_first is None or shown < 2:
            return 0.0
        return (shown - 1) / max(time.monotonic() - self._t_first, 1e-6)

    async def recv(self) -> VideoFrame:
        while True:
            vf = await self._next_frame()
            if vf is not None:
                return vf

    async def _next_frame(self) -> VideoFrame | None:
        """The next frame to send, or None when it repeats the last one sent (the receiver keeps showing
        that image; nothing is encoded or sent for it)."""
        if self.readyState != "live":
            raise MediaStreamError
        s = self._s
        clock = s.clock
        clock.start()
        now = time.monotonic()
        if self._next is None:
            self._next = max(0, clock.frame_at(now))
        k, skipped = await _pace(
            self._next,
            clock.time_of_frame(self._next) - now,
            MAX_VIDEO_LAG_FRAMES / clock.fps,
            lambda: clock.frame_at(now),
        )
        if skipped:
            s.metrics.video_skipped.inc(skipped)
        if self.readyState != "live":
            raise MediaStreamError
        plan = s.timeline.video_plan(k)
        frame = s.renderer.get(k, plan.generation) if plan is not None else None
        if frame is None and plan is not None:
            s.renderer.wake()
            grace = FIRST_FRAME_WAIT_S if self._last is None else LATE_GRACE_FRAMES / clock.fps
            limit = clock.time_of_frame(k) + grace
            while frame is None and time.monotonic() < limit and self.readyState == "live":
                await asyncio.sleep(0.002)
                frame = s.renderer.get(k, plan.generation)
        self._next = k + 1
        if frame is not None and frame.repeat and frame.video is self._last:
            self.frames_repeated += 1
            s.metrics.video_repeated.inc()
            s.on_video_frame(k, plan)
            return None
        if frame is not None and not frame.repeat:
            vf = self._last = frame.video
        else:
            if frame is None:
                self.frames_late += 1
                s.metrics.video_late.inc()
            # the last image (or a repeat's) again, in a frame of its own (its timestamp is already in use)
            source = frame.video if frame is not None else self._last
            yuv = source.to_ndarray() if source is not None else s.blank_yuv
            if frame is not None and plan is not None and plan.values is not None and s.renderer.debug_markers:
                # (a repeat's image carries the marker of the frame it repeats: this one's, so markers stay in order)
                markers.stamp(yuv, yuv.shape[1], k, plan.speaking, markers.lips_apart(plan.values))
            vf = self._last = video_frame(yuv)
        vf.pts = k * clock.samples_per_frame
        vf.time_base = TIME_BASE
        self.frames_sent += 1
        if self._t_first is None:
            self._t_first = time.monotonic()
        s.metrics.video_frames.inc()
        s.on_video_frame(k, plan)
        return vf
