"""A small aiortc client of the live session API, for tests and ``benchmarks.bench_server``.

It offers recvonly audio + video, posts the offer to ``POST /sessions``, and records every frame it
receives with its arrival time; when the server stamps debug markers it also decodes them. The time
each RTP packet arrives is recorded too, so A/V offsets can be measured before the receiver's own
jitter buffers (aiortc holds 4 audio packets, a browser adapts its own).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from server import markers


@dataclass
class VideoSample:
    t: float  # time.perf_counter() when the decoded frame came out of the track
    pts: int
    width: int
    height: int
    marker: markers.Marker | None
    thumb: np.ndarray  # luma subsampled every 16 pixels (uint8), to compare frames
    rtp_t: float | None  # arrival of the frame's first RTP packet
    rtp_done_t: float | None = None  # arrival of its last packet (RTP marker bit): the frame is complete

    @property
    def complete_t(self) -> float:
        """When the whole frame was at the client. A browser decodes it then; aiortc's jitter buffer
        only releases a frame when the next one's first packet arrives (one frame period later)."""
        return self.rtp_done_t if self.rtp_done_t is not None else self.t


@dataclass
class AudioSample:
    t: float
    pts: int
    rms: float
    beep: int | None  # sample offset of a debug beep in this frame
    rtp_t: float | None

    @property
    def speech(self) -> bool:
        """Audible and not the debug beep."""
        return self.beep is None and self.rms > 0.01


@dataclass
class Received:
    video: list[VideoSample] = field(default_factory=list)
    audio: list[AudioSample] = field(default_factory=list)
    luma: list[np.ndarray] = field(default_factory=list)  # full frames, with ``keep_luma``
    pcm: list[np.ndarray] = field(default_factory=list)  # audio frames (int16), with ``keep_luma``


class AvatarClient:
    """One live session seen from the receiving side."""

    def __init__(
        self, base_url: str, api_key: str | None = None, decode_markers: bool = False, keep_luma: bool = False
    ) -> None:
        """``keep_luma``: keep every received frame's full luma plane and audio samples
        (``received.luma``, ``received.pcm``)."""
        self.base_url = base_url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        # an idle pooled connection is dropped well before a server closes it (uvicorn's default: after 5 s),
        # so a request is never sent down a connection the server is closing at that moment
        limits = httpx.Limits(keepalive_expiry=2.0)
        self.http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30.0, limits=limits)
        self.decode_markers = decode_markers
        self.keep_luma = keep_luma
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback: no STUN
        self.session_id: str | None = None
        self.received = Received()
        self._tasks: list[asyncio.Task[None]] = []
        self._rtp_first: dict[tuple[str, int], float] = {}
        self._rtp_last: dict[tuple[str, int], float] = {}
        self._rtp_origin: dict[str, int] = {}
        self.connected = asyncio.Event()

    async def connect(
        self,
        portrait_id: str = "default",
        persona_id: str | None = None,
        send_audio: MediaStreamTrack | None = None,
        peer_audio: str | None = None,
        avatar: str | None = None,
    ) -> dict[str, Any]:
        """Offer audio + video; ``send_audio``: an audio track this client sends (a microphone, a file),
        offered sendrecv; ``peer_audio``: what the avatar does with it ("speak" or "ignore"); ``avatar``:
        a video avatar by name."""
        if send_audio is not None:
            self.pc.addTransceiver(send_audio, direction="sendrecv")
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.ensure_future(self._consume(track)))

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        r = await self.http.post(
            "/sessions",
            json={
                "sdp": self.pc.localDescription.sdp,
                "type": "offer",
                "portrait_id": portrait_id,
                "persona_id": persona_id,
                **({"peer_audio": peer_audio} if peer_audio else {}),
                **({"avatar": avatar} if avatar else {}),
            },
        )
        if r.status_code != 201:
            raise RuntimeError(f"POST /sessions -> {r.status_code}: {r.text}")
        body: dict[str, Any] = r.json()
        self.session_id = body["session_id"]
        self._hook_rtp()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
        return body

    def _hook_rtp(self) -> None:
        for tr in self.pc.getTransceivers():
            receiver = tr.receiver
            kind = tr.kind
            original = receiver._handle_rtp_packet

            async def hooked(packet: Any, arrival_time_ms: int, _orig: Any = original, _kind: str = kind) -> None:
                now = time.perf_counter()
                self._rtp_first.setdefault((_kind, int(packet.timestamp)), now)
                if packet.marker:
                    self._rtp_last.setdefault((_kind, int(packet.timestamp)), now)
                await _orig(packet, arrival_time_ms)

            receiver._handle_rtp_packet = hooked  # type: ignore[method-assign]

    def _rtp_arrival(self, kind: str, pts: int, last: bool = False) -> float | None:
        """When the first (``last``: the marked last) RTP packet of the frame with this ``pts`` arrived.

        aiortc's receiver rebases RTP timestamps so that its first frame has pts 0: the origin is the
        timestamp of the first packet that arrived.
        """
        origin = self._rtp_origin.get(kind)
        if origin is None:
            firsts = [(t, ts) for (k, ts), t in self._rtp_first.items() if k == kind]
            if not firsts:
                return None
            origin = min(firsts)[1]
            self._rtp_origin[kind] = origin
        return (self._rtp_last if last else self._rtp_first).get((kind, (origin + pts) % 2**32))

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            t = time.perf_counter()
            pts = int(frame.pts or 0)
            rtp_t = self._rtp_arrival(track.kind, pts)
            if isinstance(frame, VideoFrame):
                w, h = frame.width, frame.height
                plane = frame.planes[0]
                luma = np.frombuffer(memoryview(plane), np.uint8).reshape(h, plane.line_size)[:, :w]
                mk = markers.read(luma) if self.decode_markers else None
                if self.keep_luma:
                    self.received.luma.append(luma.copy())
                self.received.video.append(
                    VideoSample(
                        t,
                        pts,
                        w,
                        h,
                        mk,
                        luma[8::16, 8::16].copy(),
                        rtp_t,
                        self._rtp_arrival("video", pts, last=True),
                    )
                )
            elif isinstance(frame, AudioFrame):
                pcm = frame.to_ndarray().reshape(-1)
                if frame.layout.name == "stereo":
                    pcm = pcm[::2]
                if self.keep_luma:
                    self.received.pcm.append(pcm.copy())
                rms = float(np.sqrt(np.mean((pcm.astype(np.float64) / 32768.0) ** 2)))
                beep = markers.beep_onset(pcm) if self.decode_markers else None
                self.received.audio.append(AudioSample(t, pts, rms, beep, rtp_t))

    def video_frames_complete(self) -> list[int]:
        """Indices (RTP timestamp / 3600, from the first one) of the video frames whose last packet has
        arrived, in arrival order; works whether or not the video is decoded."""
        ts = [t for (k, t) in self._rtp_last if k == "video"]
        if not ts:
            return []
        origin = min(self._rtp_first.get(("video", t), 0.0) for t in ts)
        first = next(t for t in ts if self._rtp_first.get(("video", t)) == origin)
        return [((t - first) % 2**32) // 3600 for t in ts]

    async def wait_frames(self, n_video: int, timeout: float = 20.0) -> None:
        """Wait until ``n_video`` more video frames have arrived."""
        target = len(self.received.video) + n_video
        t_end = time.monotonic() + timeout
        while len(self.received.video) < target:
            if time.monotonic() > t_end:
                raise TimeoutError(f"only {len(self.received.video)} of {target} video frames after {timeout} s")
            await asyncio.sleep(0.01)

    async def say(self, text: str, interrupt: bool = False) -> httpx.Response:
        return await self.http.post(f"/sessions/{self.session_id}/say", json={"text": text, "interrupt": interrupt})

    async def chat(self, text: str, interrupt: bool = False) -> httpx.Response:
        return await self.http.post(f"/sessions/{self.session_id}/chat", json={"text": text, "interrupt": interrupt})

    async def interrupt(self) -> httpx.Response:
        return await self.http.post(f"/sessions/{self.session_id}/interrupt")

    async def open_audio(
        self, sample_rate: int, channels: int = 1, api_key: str | None = None, in_query: bool = True
    ) -> AudioSocket:
        """Open ``/sessions/{id}/audio`` and declare the PCM format (in the query, or in a first message);
        the client's key goes in a header, or with ``api_key`` in the first message (as a browser must send
        it); returns once the server said ready."""
        assert self.session_id is not None
        url = "ws" + self.base_url[4:] + f"/sessions/{self.session_id}/audio"
        fmt = {"sample_rate": sample_rate, "channels": channels, "encoding": "s16le"}
        if in_query:
            url += f"?sample_rate={sample_rate}&channels={channels}&encoding=s16le"
        key = self.http.headers.get("x-api-key")
        headers = {"X-API-Key": key} if key and api_key is None else {}
        sock = AudioSocket(await websockets.connect(url, additional_headers=headers, max_size=None))
        if not in_query:
            await sock.ws.send(json.dumps({**fmt, **({"api_key": api_key} if api_key else {})}))
        sock.ready = await sock.next_message()
        return sock

    async def status(self) -> dict[str, Any]:
        r = await self.http.get(f"/sessions/{self.session_id}")
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out

    async def close(self, delete: bool = True) -> None:
        if delete and self.session_id:
            try:
                await self.http.delete(f"/sessions/{self.session_id}")
            except httpx.HTTPError:
                pass
        await self.pc.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.aclose()


class AudioSocket:
    """A session's audio WebSocket from the sending side: PCM in real time, control messages, replies."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ready: dict[str, Any] = {}
        self.sent: list[tuple[float, int]] = []  # (time.perf_counter() when sent, samples sent before it)
        self._samples = 0

    async def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        """The server's next JSON message; raises ``websockets.ConnectionClosed`` (with its code and
        reason) when the server closed the socket instead."""
        msg = await asyncio.wait_for(self.ws.recv(), timeout)
        out: dict[str, Any] = json.loads(msg)
        return out

    async def send_pcm(self, pcm: np.ndarray) -> None:
        """int16 samples (interleaved when several channels) as one binary message."""
        self.sent.append((time.perf_counter(), self._samples))
        self._samples += len(pcm)
        await self.ws.send(np.ascontiguousarray(pcm, "<i2").tobytes())

    async def stream(self, pcm: np.ndarray, sample_rate: int, chunk_s: float = 0.02, channels: int = 1) -> float:
        """Send ``pcm`` in ``chunk_s`` pieces at real time (each when its last sample would exist, as a
        microphone or a streaming TTS would); returns the perf_counter time of its first sample."""
        n = int(round(chunk_s * sample_rate)) * channels
        t0 = time.perf_counter()
        for i in range(0, len(pcm), n):
            due = t0 + (i + n) / channels / sample_rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await self.send_pcm(pcm[i : i + n])
        return t0

    async def control(self, kind: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": kind, **fields}))

    async def close(self) -> None:
        await self.ws.close()
