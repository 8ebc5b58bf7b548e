"""Live avatar sessions: one WebRTC peer connection, two tracks, two worker threads each.

``SessionManager`` owns them: it enforces the session limit, answers offers, and closes sessions
that idle too long, run too long, never connect or lose their peer. Closing stops the tracks, the
peer connection and both threads; nothing outlives a session.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import queue
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError
from aiortc.sdp import SessionDescription

from server.clock import MediaClock
from server.egress import EndpointRefused, chat_settings_for
from server.engine import Engine, PersonaVoice
from server.metrics import Metrics
from server.portraits import PortraitStore, release_memory
from server.render_pool import RenderPool, RenderProcess
from server.settings import Settings
from server.tenancy import LOCAL_ADMIN, Principal
from server.timeline import FramePlan, Timeline
from server.tracks import AvatarAudioTrack, AvatarVideoTrack
from server.workers import ChatRequest, ChatWorker, LiveVoice, RenderWorker, SayRequest, SpeechWorker
from talker.chat import ChatSettings
from talker.persona import Persona, PersonaNotFound, PersonaStore
from talker.provenance import Label, Marker
from talker.stages import FaceRig, MotionStyle, clean_text

log = logging.getLogger("talker.server")

RENDER_BUDGET_S = 0.03
"""Time kept free to render the first frame of new speech before it is sent (a frame takes ~16 ms)."""


class SessionError(Exception):
    """A session request that cannot be served; ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SessionLimitError(SessionError):
    status = 429


class SessionNotFound(SessionError):
    status = 404


class SessionRefused(SessionError):
    status = 422


class BadOffer(SessionError):
    status = 400


class SayQueueFull(SessionError):
    status = 429


class SessionClosed(SessionError):
    status = 409


def check_offer(sdp: str) -> None:
    """Reject offers the avatar cannot answer, naming what is wrong (raises ``BadOffer``)."""
    if not sdp.strip():
        raise BadOffer("the SDP offer is empty")
    try:
        desc = SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError, TypeError) as e:
        raise BadOffer(f"the SDP offer cannot be parsed: {e}") from e
    kinds = [m.kind for m in desc.media]
    if "audio" not in kinds or "video" not in kinds:
        raise BadOffer(f"the SDP offer has media {kinds or 'none'}; it needs one audio and one video m-line (recvonly)")
    for m in desc.media:
        if m.kind in ("audio", "video") and m.direction in ("sendonly", "inactive"):
            raise BadOffer(
                f"the offer's {m.kind} m-line is {m.direction}; the avatar sends media, offer recvonly or sendrecv"
            )
        if m.kind in ("audio", "video") and not (m.ice and m.ice.usernameFragment and m.dtls and m.dtls.fingerprints):
            raise BadOffer(f"the offer's {m.kind} m-line has no ICE credentials or DTLS fingerprint")


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
    speech_gaps: int
    audio_frames_sent: int
    fps: float
    say_queue: int
    segments_waiting: int
    frames_rendered_ahead: int
    close_reason: str | None
    errors: list[str]


class Session:
    def __init__(
        self,
        sid: str,
        number: int,
        settings: Settings,
        engine: Engine,
        rig: FaceRig,
        portrait_id: str,
        metrics: Metrics,
        render_pool: RenderPool | None = None,
        render_process: RenderProcess | None = None,
        *,
        voice: LiveVoice | None = None,
        style: MotionStyle | None = None,
        chat: ChatSettings | None = None,
        persona_id: str | None = None,
    ) -> None:
        """``render_process``: leased from ``render_pool``, given back at close (None: render in a thread).
        ``voice`` (default: the engine's), ``style``: a persona's voice and manner. ``chat``: the endpoint
        that answers ``chat`` requests (None: they are repeated as said)."""
        self.id = sid
        self.render_pool = render_pool
        self.render_process = render_process
        self.portrait_id = portrait_id
        self.persona_id = persona_id
        voice = voice or engine.tts
        self.settings = settings
        self.metrics = metrics
        fps = settings.fps
        self.clock = MediaClock(fps)
        self.timeline = Timeline(
            fps,
            voice.sample_rate,
            seed=settings.seed + number,
            style=style,
            markers=settings.debug_markers,
            earliest_frame=self._earliest_frame,
        )
        short = sid[:8]
        self.renderer = RenderWorker(
            f"talker-render-{short}",
            rig,
            self.timeline,
            self.clock,
            settings.lead_frames,
            metrics,
            settings.debug_markers,
            self.render_process,
            Marker() if settings.provenance else None,
            Label(settings.label) if settings.label else None,
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
        h, w = rig.image.shape[:2]
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
    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer, attach the tracks, start the workers; returns the answer SDP."""

        @self.pc.on("connectionstatechange")
        async def _on_state() -> None:
            st = self.pc.connectionState
            if st == "connected" and self.connected_at is None:
                self.connected_at = self.last_activity = time.monotonic()  # idle time counts from here
                self.state = "connected"
            elif st in ("failed", "closed") and self.state != "closed" and self.on_ended is not None:
                self.on_ended(self, f"peer connection {st}")

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for track in (self.audio_track, self.video_track):
            sender = self.pc.addTrack(track)
            for t in self.pc.getTransceivers():
                if t.sender is sender:
                    t.direction = "sendonly"
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
        cut = self.timeline.interrupt()
        self.renderer.wake()
        self.last_activity = now
        if cut is not None:
            self._interrupt_pending = (cut, now)
        return Interrupted(cut, pending or cut is not None)

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
            speech_gaps=self.timeline.gaps,
            audio_frames_sent=self.audio_track.frames_sent,
            fps=self.video_track.fps(),
            say_queue=self.speech.requests.qsize(),
            segments_waiting=st.waiting_segments,
            frames_rendered_ahead=self.renderer.ahead,
            close_reason=self.close_reason,
            errors=errors,
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
        self.timeline.close()
        self.renderer.stop()
        self.audio_track.stop()
        self.video_track.stop()
        await self.pc.close()
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        for t in (self.renderer, self.speech, self.chat):
            if t is not None and t.ident is not None:
                t.join(timeout=10.0)
                if t.is_alive():  # pragma: no cover - a synthesis call longer than 10 s
                    log.warning("thread %s still running after session close", t.name)
        if self.render_pool is not None and self.render_process is not None and not self.renderer.is_alive():
            self.render_pool.release(self.render_process)
            self.render_process = None


def _collect_and_release() -> None:
    """After a session closes: collect the cycles its objects formed (the start-up models are frozen out of
    the collector, so this pass is short), then hand the freed heap back to the system; without both, a
    server that opens and closes sessions all day grows."""
    t0 = time.perf_counter()
    gc.collect()
    release_memory()
    log.debug("memory released after a session in %.1f ms", 1000 * (time.perf_counter() - t0))


class SessionManager:
    """All live sessions of this process."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        portraits: PortraitStore,
        metrics: Metrics,
        render_pool: RenderPool | None = None,
        personas: PersonaStore | None = None,
    ) -> None:
        self.settings = settings
        self.render_pool = render_pool
        self.engine = engine
        self.portraits = portraits
        self.personas = personas
        self.metrics = metrics
        self.sessions: dict[str, Session] = {}
        self._reserved = 0
        self._count = 0
        self._recently_closed: OrderedDict[str, str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_loop(), name="talker-session-reaper")

    def _persona(self, persona_id: str) -> Persona:
        if self.personas is None:
            raise SessionNotFound("this server keeps no personas")
        try:
            return self.personas.get(persona_id)
        except PersonaNotFound as e:
            raise SessionNotFound(f"no persona {persona_id!r}; create one with POST /personas") from e

    async def create(
        self,
        offer_sdp: str,
        portrait_id: str,
        persona_id: str | None = None,
        who: Principal = LOCAL_ADMIN,
        client: str = "",
        may_use: Callable[[str, str], bool] | None = None,
    ) -> tuple[Session, str]:
        """Open a session for an SDP offer; returns it with the answer SDP.

        With ``persona_id`` the session shows the persona's face, speaks with its voice and manner and
        chats through its endpoint (``chat_settings_for``); ``portrait_id`` is then ignored. ``who`` owns
        the session; ``client`` is the caller's address; ``may_use(kind, id)`` says whether ``who`` may use a
        portrait or persona.

        A session whose peer has not connected holds its slot only for ``offer_grace_s``: when the server
        is full, the oldest such session gives its slot to the new offer.
        """
        s = self.settings
        check_offer(offer_sdp)
        await self._admit(who, client)
        if persona_id and may_use is not None and not may_use("persona", persona_id):
            raise SessionNotFound(f"no persona {persona_id!r}; create one with POST /personas")
        persona = await asyncio.to_thread(self._persona, persona_id) if persona_id else None
        if persona is None and not self.portraits.exists(portrait_id):
            raise SessionNotFound(f"no portrait {portrait_id!r}; upload one with POST /portraits or use 'default'")
        if persona is None and may_use is not None and not may_use("portrait", portrait_id):
            raise SessionNotFound(f"no portrait {portrait_id!r}; upload one with POST /portraits or use 'default'")
        try:
            chat = chat_settings_for(persona, s)
        except EndpointRefused as e:
            raise SessionRefused(str(e)) from e
        await self._admit(who, client)  # (again: other offers may have come in while the persona loaded)
        self._reserved += 1
        try:
            voice: LiveVoice = self.engine.tts
            style: MotionStyle | None = None
            if persona is not None:
                avatar = await asyncio.to_thread(self.engine.persona_avatar, persona, s.frame_size)
                voice = await asyncio.to_thread(self.engine.voice_for, persona.voice_id, persona.voice_params)
                if isinstance(voice, PersonaVoice):
                    await asyncio.to_thread(voice.warm)
                style = persona.motion_style()
                portrait_id = f"persona:{persona.id}"
            else:
                avatar = await asyncio.to_thread(self.engine.avatar, self.portraits, portrait_id, s.frame_size)
            self._count += 1
            process = await asyncio.to_thread(self.render_pool.lease) if self.render_pool is not None else None
            session = Session(
                uuid.uuid4().hex,
                self._count,
                s,
                self.engine,
                avatar.rig,
                portrait_id,
                self.metrics,
                self.render_pool,
                process,
                voice=voice,
                style=style,
                chat=chat,
                persona_id=persona.id if persona is not None else None,
            )
            session.owner, session.client = who.tenant, client
            session.on_ended = self._on_ended
            try:
                answer = await session.answer(offer_sdp)
            except (ValueError, InvalidAccessError, InvalidStateError, InternalError) as e:
                await session.close("bad offer")
                raise BadOffer(f"the SDP offer was refused: {e}") from e
            self.sessions[session.id] = session
        finally:
            self._reserved -= 1
        self.metrics.sessions_created.inc()
        log.info("session %s opened (%d live)", session.id, len(self.sessions))
        return session, answer

    async def _admit(self, who: Principal, client: str) -> None:
        """Raise ``SessionLimitError`` unless a new session may open now (evicting a stale unconnected one
        when that makes room)."""
        s = self.settings
        waiting = [x for x in self.sessions.values() if x.connected_at is None and x.client == client]
        if client and len(waiting) >= s.pending_per_client:
            self.metrics.sessions_rejected.inc()
            raise SessionLimitError(
                f"{len(waiting)} sessions opened from your address are still waiting for their peer to connect; "
                "connect or close them first"
            )
        if not who.admin and sum(x.owner == who.tenant for x in self.sessions.values()) >= s.tenant_max_sessions:
            self.metrics.sessions_rejected.inc()
            raise SessionLimitError(f"you already have {s.tenant_max_sessions} live sessions (your limit); close one")
        if len(self.sessions) + self._reserved < s.max_sessions:
            return
        now = time.monotonic()
        stale = [x for x in self.sessions.values() if x.connected_at is None and now - x.created_at > s.offer_grace_s]
        if stale:
            oldest = min(stale, key=lambda x: x.created_at)
            await self.close(oldest.id, "its peer did not connect before another client needed the slot")
            if len(self.sessions) + self._reserved < s.max_sessions:
                return
        self.metrics.sessions_rejected.inc()
        raise SessionLimitError(
            f"this server already runs {s.max_sessions} live sessions (its limit); close one or try again later"
        )

    def visible(self, who: Principal) -> list[Session]:
        """The sessions ``who`` may see: its own (an admin's: all)."""
        return [x for x in self.sessions.values() if who.admin or x.owner == who.tenant]

    def get(self, sid: str, who: Principal = LOCAL_ADMIN) -> Session:
        session = self.sessions.get(sid)
        if session is not None and not (who.admin or session.owner == who.tenant):
            raise SessionNotFound(f"no session {sid}")
        if session is None:
            why = self._recently_closed.get(sid)
            if why:
                raise SessionNotFound(f"session {sid} was closed ({why})")
            raise SessionNotFound(f"no session {sid}")
        return session

    async def close(self, sid: str, reason: str) -> None:
        """Close a session (no-op when it is already gone)."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        self._recently_closed[sid] = reason
        while len(self._recently_closed) > 256:
            self._recently_closed.popitem(last=False)
        await session.close(reason)
        await asyncio.to_thread(_collect_and_release)
        self.metrics.sessions_closed.inc()
        log.info("session %s closed: %s (%d live)", sid, reason, len(self.sessions))

    def _on_ended(self, session: Session, reason: str) -> None:
        if session.id in self.sessions:
            task = asyncio.get_running_loop().create_task(self.close(session.id, reason))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _expired(self, session: Session, now: float) -> str | None:
        s = self.settings
        if session.connected_at is None and now - session.created_at > s.connect_timeout_s:
            return f"the peer did not connect within {s.connect_timeout_s:g} s"
        if now - session.last_activity > s.idle_timeout_s:
            return f"idle for {s.idle_timeout_s:g} s"
        if now - session.created_at > s.max_session_s:
            return f"reached the maximum session length of {s.max_session_s:g} s"
        if session.renderer.error is not None:
            return f"rendering failed: {session.renderer.error}"
        return None

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.settings.idle_timeout_s / 4))
            now = time.monotonic()
            for session in list(self.sessions.values()):
                reason = self._expired(session, now)
                if reason and session.id in self.sessions:
                    await self.close(session.id, reason)

    async def shutdown(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            try:
                await self._reaper
            except asyncio.CancelledError:
                pass
        for sid in list(self.sessions):
            await self.close(sid, "server shutting down")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
