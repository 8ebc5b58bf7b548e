"""Live avatar sessions: one WebRTC peer connection, two tracks, two worker threads each.

``server.manager.SessionManager`` owns them: it enforces the session limit, answers offers, and closes
sessions that idle too long, run too long, never connect or lose their peer. Closing stops the tracks,
the peer connection and the threads; nothing outlives a session. Audio streamed in (a socket or the
peer's track) goes through ``server.audio_in``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from server.audio_in import AudioInput
from server.clock import MediaClock
from server.engine import Engine
from server.frame_memo import MemoShelf
from server.metrics import Metrics
from server.render_pool import Face, RenderPool, RenderProcess, face_size
from server.render_worker import RenderWorker
from server.session_errors import AudioBusy, SayQueueFull, SessionClosed, SessionError, SessionRefused
from server.settings import Settings
from server.tenancy import LOCAL_ADMIN
from server.timeline import FramePlan, Timeline
from server.tracks import AvatarAudioTrack, AvatarVideoTrack
from server.workers import ChatRequest, ChatWorker, LiveVoice, SayRequest, SpeechWorker
from talker.chat import ChatSettings
from talker.provenance import Label, Marker
from talker.stages import LipsyncModel, MixedMotionStream, MotionStyle, clean_text

log = logging.getLogger("talker.server")

RENDER_BUDGET_S = 0.03
"""Time kept free to render the first frame of new speech before it is sent (a frame takes ~16 ms)."""


class Interrupted(NamedTuple):
    idle_from_frame: int | None  # the first frame that is idle again; None if nothing was scheduled to play
    stopped: bool  # whether anything was stopped: speech playing, text waiting or being synthesized, a reply


@dataclass
class SessionStatus:
    session_id: str
    state: str
    portrait_id: str
    persona_id: str | None
    chat_endpoint: str | None
    speaking: bool
    age_s: float
    idle_s: float
    frames_sent: int
    frames_late: int
    frames_repeated: int
    frames_recalled: int
    idle_memo_mb: float
    render_cpu_cores: float | None
    speech_gaps: int
    audio_frames_sent: int
    fps: float
    say_queue: int
    segments_waiting: int
    frames_rendered_ahead: int
    close_reason: str | None
    errors: list[str]
    audio_in_s: float
    avatar: str | None = None


class Session:
    def __init__(
        self,
        sid: str,
        settings: Settings,
        engine: Engine,
        face: Face,
        portrait_id: str,
        metrics: Metrics,
        render_pool: RenderPool | None = None,
        render_process: RenderProcess | None = None,
        *,
        voice: LiveVoice | None = None,
        style: MotionStyle | None = None,
        chat: ChatSettings | None = None,
        persona_id: str | None = None,
        lipsync: LipsyncModel | None = None,
        avatar: str | None = None,
        memos: MemoShelf | None = None,
    ) -> None:
        """``face``: a portrait's rig or a video avatar (``avatar``: its name). ``render_process``: leased from
        ``render_pool``, given back at close (None: render in a thread).
        ``voice`` (default: the engine's), ``style``: a persona's voice and manner. ``chat``: the endpoint
        that answers ``chat`` requests (None: they are repeated as said). ``lipsync``: the model that moves
        the mouth to audio streamed in (None: the session takes no audio). ``memos``: where the portrait's
        memo of its idle loop is shared with its other sessions (None: every listening frame is rendered)."""
        self.id = sid
        self.render_pool = render_pool
        self.render_process = render_process
        self.portrait_id = portrait_id
        self.persona_id = persona_id
        self.avatar = avatar
        voice = voice or engine.tts
        self.settings = settings
        self.metrics = metrics
        fps = settings.fps
        self.clock = MediaClock(fps)
        self.lipsync = lipsync
        # one seed for every session: a portrait's sessions share its idle loop (and its memo)
        seed = settings.seed
        self.timeline = Timeline(
            fps,
            voice.sample_rate,
            seed=seed,
            style=style,
            markers=settings.debug_markers,
            earliest_frame=self._earliest_frame,
            stream=MixedMotionStream(lipsync, fps, seed, style) if lipsync is not None else None,
        )
        self.audio_in: AudioInput | None = None  # started by the first audio stream
        self._audio_open = False
        self._peer_task: asyncio.Task[None] | None = None
        short = sid[:8]
        self._memos = memos
        self._memo = memos.take(face) if memos is not None and avatar is None else None
        self.renderer = RenderWorker(
            f"talker-render-{short}",
            face,
            self.timeline,
            self.clock,
            settings.lead_frames,
            metrics,
            settings.debug_markers,
            self.render_process,
            Marker() if settings.provenance else None,
            Label(settings.label) if settings.label else None,
            self._memo,
        )
        self.speech = SpeechWorker(
            f"talker-speech-{short}",
            voice,
            self.timeline,
            fps,
            settings.first_piece_chars,
            settings.say_queue,
            metrics,
        )
        self.chat: ChatWorker | None = None
        if chat is not None:
            self.chat = ChatWorker(
                f"talker-chat-{short}",
                chat,
                self.speech,
                self.timeline,
                settings.say_queue,
                settings.chat_history_turns,
                metrics,
                settings.chat_first_piece_chars,
            )
        w, h = face_size(face)
        self.blank_yuv = np.full((h * 3 // 2, w), 128, np.uint8)
        self.blank_yuv[:h] = 16
        self.audio_track = AvatarAudioTrack(self)
        self.video_track = AvatarVideoTrack(self)
        ice = [
            RTCIceServer(urls=i["urls"], username=i.get("username"), credential=i.get("credential"))  # type: ignore[arg-type]
            for i in settings.ice_servers()
        ]
        # an empty list, not None: aiortc would fall back to Google's public STUN server
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))
        self.created_at = self.last_activity = time.monotonic()
        self.connected_at: float | None = None
        self.owner = LOCAL_ADMIN.tenant  # the tenant that opened it, and from which address
        self.client = ""
        self.state = "new"
        self.close_reason: str | None = None
        self._utterance = 0
        self._interrupt_pending: tuple[int, float] | None = None
        self.on_ended: Callable[[Session, str], None] | None = None  # set by the manager

    def _earliest_frame(self) -> int:
        """First frame whose send time is at least ``RENDER_BUDGET_S`` away (new speech starts there)."""
        if not self.clock.started:
            return 0
        t = time.monotonic() + RENDER_BUDGET_S
        return int(np.ceil(self.clock.sample_at(t) / self.clock.samples_per_frame))

    # --------------------------------------------------------------------------- signalling
    async def answer(self, offer_sdp: str, peer_audio: bool = False) -> str:
        """Apply the offer, attach the tracks, start the workers; returns the answer SDP. ``peer_audio``:
        an audio track the offer sends is played with the mouth following it (``open_audio``)."""

        @self.pc.on("connectionstatechange")
        async def _on_state() -> None:
            st = self.pc.connectionState
            if st == "connected" and self.connected_at is None:
                self.connected_at = self.last_activity = time.monotonic()  # idle time counts from here
                self.state = "connected"
            elif st in ("failed", "closed") and self.state != "closed" and self.on_ended is not None:
                self.on_ended(self, f"peer connection {st}")

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and peer_audio and self._peer_task is None:
                self._peer_task = asyncio.get_running_loop().create_task(self._hear_peer(track))

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for track in (self.audio_track, self.video_track):
            sender = self.pc.addTrack(track)
            for t in self.pc.getTransceivers():
                if t.sender is sender:
                    receive = peer_audio and t.kind == "audio" and t.direction == "sendrecv"
                    t.direction = "sendrecv" if receive else "sendonly"
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        self.renderer.start()
        self.speech.start()
        if self.chat is not None:
            self.chat.start()
        return str(self.pc.localDescription.sdp)

    # --------------------------------------------------------------------------- commands
    def say(self, text: str, interrupt: bool = False) -> tuple[int, int]:
        """Queue text to speak after what is already queued (or instead of it with ``interrupt``).

        Returns (utterance id, requests waiting). Raises ``audio.text.TextError`` for unusable text,
        ``SayQueueFull`` when ``say_queue`` requests wait, ``SessionClosed`` after close.
        """
        return self._enqueue(self.speech, SayRequest, text, interrupt, "utterances waiting; wait for them")

    def say_or_chat(self, text: str, interrupt: bool = False) -> tuple[int, int, str]:
        """Answer ``text`` through the session's chat endpoint (reply streamed, spoken sentence by
        sentence), or, without one, say it as given. Returns (utterance id, requests waiting, mode)
        with mode "chat" or "repeat". Raises like ``say``."""
        if self.chat is None:
            return (*self.say(text, interrupt), "repeat")
        full = "chat messages waiting; wait for the replies"
        return (*self._enqueue(self.chat, ChatRequest, text, interrupt, full), "chat")

    def _enqueue(
        self,
        worker: SpeechWorker | ChatWorker,
        make: Callable[[int, str, int, float], Any],
        text: str,
        interrupt: bool,
        full: str,
    ) -> tuple[int, int]:
        """A new utterance for ``worker`` (the speech or the chat thread): (its id, requests waiting)."""
        if self.state == "closed":
            raise SessionClosed(f"session {self.id} is closed ({self.close_reason})")
        text = clean_text(text, self.settings.max_say_chars)
        if interrupt:
            self.interrupt()
        self._utterance += 1
        try:
            worker.submit(make(self._utterance, text, self.timeline.epoch, time.monotonic()))
        except queue.Full as e:
            raise SayQueueFull(f"session {self.id} already has {self.settings.say_queue} {full} or interrupt") from e
        self.last_activity = time.monotonic()
        self.metrics.utterances.inc()
        return self._utterance, worker.requests.qsize()

    def interrupt(self) -> Interrupted:
        """Stop speaking: the first frame not yet sent is idle, queued text and a chat reply being
        streamed are dropped."""
        if self.state == "closed":
            raise SessionClosed(f"session {self.id} is closed ({self.close_reason})")
        now = time.monotonic()
        pending = self.speech.pending or (self.chat is not None and self.chat.pending)
        if self.chat is not None:
            self.chat.clear()
        self.speech.clear()
        if self.audio_in is not None:
            pending = pending or self.audio_in.queued_s > 0
            self.audio_in.clear()
        cut = self.timeline.interrupt()
        self.renderer.wake()
        self.last_activity = now
        if cut is not None:
            self._interrupt_pending = (cut, now)
        return Interrupted(cut, pending or cut is not None)

    # --------------------------------------------------------------------------- audio in
    def open_audio(self) -> None:
        """Take the session's one audio input (a socket, or the peer's track); ``close_audio`` gives it back.
        Raises ``SessionClosed``, ``AudioBusy`` while another stream holds it, ``SessionRefused`` without a
        lip-sync model."""
        if self.state == "closed":
            raise SessionClosed(f"session {self.id} is closed ({self.close_reason})")
        if self.lipsync is None:
            raise SessionRefused("this server has no lip-sync model, so sessions take no audio")
        if self._audio_open:
            raise AudioBusy(f"session {self.id} already takes audio from another stream; close that one first")
        if self.audio_in is None:
            frames = int(np.ceil(self.settings.audio_in_buffer_ms / 1000 * self.clock.fps - 1e-9))
            self.audio_in = AudioInput(f"talker-audio-{self.id[:8]}", self.timeline, self.clock.fps, frames)
            self.audio_in.start()
            self.renderer.patient = True
        self._audio_open = True

    def close_audio(self) -> None:
        self._audio_open = False

    async def _hear_peer(self, track: MediaStreamTrack) -> None:
        """The peer's audio track as the avatar's speech: one utterance, a new one after an interrupt."""
        try:
            self.open_audio()
        except SessionError as e:
            log.warning("session %s: the peer's audio is not played: %s", self.id, e.message)
            return
        utterance: tuple[int, int] | None = None
        try:
            while self.state != "closed":
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    break
                if not isinstance(frame, AudioFrame):
                    continue
                pcm = frame.to_ndarray().reshape(-1)
                channels = len(frame.layout.channels)
                if channels > 1:  # (packed s16: interleaved)
                    pcm = np.round(pcm.reshape(-1, channels).mean(axis=1)).astype(np.int16)
                if utterance is None or utterance[1] != self.timeline.epoch:
                    utterance = self.start_utterance(interrupt=False)
                self.hear(pcm.astype(np.int16), frame.sample_rate, *utterance)
        finally:
            if utterance is not None and self.state != "closed":
                self.end_utterance(*utterance)
            self.close_audio()

    def start_utterance(self, interrupt: bool) -> tuple[int, int]:
        """A new utterance of streamed audio (after what plays, or instead of it): (its id, its epoch)."""
        if self.state == "closed":
            raise SessionClosed(f"session {self.id} is closed ({self.close_reason})")
        if interrupt:
            self.interrupt()
        self._utterance += 1
        self.metrics.utterances.inc()
        self.last_activity = time.monotonic()
        return self._utterance, self.timeline.epoch

    def hear(self, samples: np.ndarray, sample_rate: int, utterance: int, epoch: int) -> None:
        """Audio of an utterance (int16 mono) to play with the mouth following it (after ``open_audio``)."""
        assert self.audio_in is not None
        self.audio_in.add(samples, sample_rate, utterance, epoch)
        self.last_activity = time.monotonic()

    def end_utterance(self, utterance: int, epoch: int) -> None:
        assert self.audio_in is not None
        self.audio_in.end(utterance, epoch)

    def on_video_frame(self, k: int, plan: FramePlan | None) -> None:
        """Called by the video track for every frame it hands over (latency bookkeeping)."""
        if plan is None:
            return
        if plan.first and plan.said_at is not None:
            self.metrics.say_to_first_frame.observe(time.monotonic() - plan.said_at)
        pend = self._interrupt_pending
        if pend is not None and k >= pend[0]:
            self.metrics.interrupt_to_idle.observe(time.monotonic() - pend[1])
            self._interrupt_pending = None

    def status(self) -> SessionStatus:
        st = self.timeline.state()
        now = time.monotonic()
        errors = list(self.speech.errors)
        chatting = False
        if self.chat is not None:
            errors += self.chat.errors
            chatting = self.chat.busy or not self.chat.requests.empty()
        if self.renderer.error is not None:
            errors.append(f"render: {self.renderer.error}")
        return SessionStatus(
            session_id=self.id,
            state=self.state,
            portrait_id=self.portrait_id,
            persona_id=self.persona_id,
            chat_endpoint=self.chat.chat.base_url if self.chat is not None else None,
            speaking=st.speaking or self.speech.busy or not self.speech.requests.empty() or chatting,
            age_s=now - self.created_at,
            idle_s=now - self.last_activity,
            frames_sent=self.video_track.frames_sent,
            frames_late=self.video_track.frames_late,
            frames_repeated=self.video_track.frames_repeated,
            frames_recalled=src.recalled if (src := self.renderer.source) is not None else 0,
            idle_memo_mb=self._memo.nbytes / 2**20 if self._memo is not None else 0.0,
            render_cpu_cores=self.renderer.render_cpu_cores(),
            speech_gaps=self.timeline.gaps,
            audio_frames_sent=self.audio_track.frames_sent,
            fps=self.video_track.fps(),
            say_queue=self.speech.requests.qsize(),
            segments_waiting=st.waiting_segments,
            frames_rendered_ahead=self.renderer.ahead,
            close_reason=self.close_reason,
            errors=errors,
            audio_in_s=self.audio_in.seconds_in if self.audio_in is not None else 0.0,
            avatar=self.avatar,
        )

    # --------------------------------------------------------------------------- lifecycle
    async def close(self, reason: str) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self.close_reason = reason
        if self.chat is not None:
            self.chat.stop()
        self.speech.stop()
        if self.audio_in is not None:
            self.audio_in.stop()
        self.timeline.close()
        self.renderer.stop()
        self.audio_track.stop()
        self.video_track.stop()
        await self.pc.close()
        if self._peer_task is not None:
            self._peer_task.cancel()
            await asyncio.gather(self._peer_task, return_exceptions=True)
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        for t in (self.renderer, self.speech, self.chat, self.audio_in):
            if t is not None and t.ident is not None:
                t.join(timeout=10.0)
                if t.is_alive():  # pragma: no cover - a synthesis call longer than 10 s
                    log.warning("thread %s still running after session close", t.name)
        if self._memos is not None and self._memo is not None and not self.renderer.is_alive():
            self._memos.give_back(self.renderer.face)
            self._memo = None
        if self.render_pool is not None and self.render_process is not None and not self.renderer.is_alive():
            self.render_pool.release(self.render_process)
            self.render_process = None
