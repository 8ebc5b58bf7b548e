"""All live sessions of one server process: admission (limits, quotas, stale offers), creation, lookup
and closing (idle, too long, never connected, peer lost)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError

from server.egress import EndpointRefused, chat_settings_for
from server.engine import Engine, PersonaVoice
from server.frame_memo import MemoShelf
from server.load import LoadMonitor
from server.metrics import Metrics
from server.portraits import PortraitStore, release_memory
from server.render_pool import Face, RenderPool
from server.session import Session
from server.session_errors import BadOffer, SessionLimitError, SessionNotFound, SessionRefused, check_offer
from server.settings import Settings
from server.tenancy import LOCAL_ADMIN, Principal
from server.workers import LiveVoice
from talker.avatar_player import VideoAvatar
from talker.persona import Persona, PersonaNotFound, PersonaStore
from talker.stages import IDLE_LOOP_S, LipsyncError, LipsyncModel, MotionStyle

log = logging.getLogger("talker.server")


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
        self.load = LoadMonitor(metrics, settings.admit_max_late_pct)
        self._reserved = 0
        # each portrait's listening frames, shared by its sessions
        self.memos = MemoShelf(settings.idle_memo_mb << 20, IDLE_LOOP_S, settings.idle_memo_keep)
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
        peer_audio: bool = False,
        video: VideoAvatar | None = None,
    ) -> tuple[Session, str]:
        """Open a session for an SDP offer; returns it with the answer SDP.

        With ``persona_id`` the session shows the persona's face, speaks with its voice and manner and
        chats through its endpoint (``chat_settings_for``); ``portrait_id`` is then ignored. ``who`` owns
        the session; ``client`` is the caller's address; ``may_use(kind, id)`` says whether ``who`` may use a
        portrait or persona. ``peer_audio``: an audio track the peer sends is the avatar's speech.
        ``video``: a video avatar (the caller's, looked up by the route) shows instead of the portrait or the
        persona's face; a persona still brings its voice, manner and chat endpoint.

        A session whose peer has not connected holds its slot only for ``offer_grace_s``: when the server
        is full, the oldest such session gives its slot to the new offer.
        """
        s = self.settings
        check_offer(offer_sdp)
        await self._admit(who, client)
        if persona_id and may_use is not None and not may_use("persona", persona_id):
            raise SessionNotFound(f"no persona {persona_id!r}; create one with POST /personas")
        persona = await asyncio.to_thread(self._persona, persona_id) if persona_id else None
        if video is not None and video.size != s.frame_size:
            w, h = video.size
            raise SessionRefused(
                f"video avatar {video.info.name!r} is {w}x{h}; this server's sessions are {s.size}x{s.size}: "
                f"prepare it again at that size"
            )
        portrait_needed = persona is None and video is None
        if portrait_needed and not self.portraits.exists(portrait_id):
            raise SessionNotFound(f"no portrait {portrait_id!r}; upload one with POST /portraits or use 'default'")
        if portrait_needed and may_use is not None and not may_use("portrait", portrait_id):
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
            face: Face
            if persona is not None:
                if video is None:
                    face = (await asyncio.to_thread(self.engine.persona_avatar, persona, s.frame_size)).rig
                voice = await asyncio.to_thread(self.engine.voice_for, persona.voice_id, persona.voice_params)
                if isinstance(voice, PersonaVoice):
                    await asyncio.to_thread(voice.warm)
                style = persona.motion_style()
                portrait_id = f"persona:{persona.id}"
            elif video is None:
                face = (await asyncio.to_thread(self.engine.avatar, self.portraits, portrait_id, s.frame_size)).rig
            if video is not None:
                face, portrait_id = video, f"avatar:{video.info.name}"
            process = await asyncio.to_thread(self.render_pool.lease) if self.render_pool is not None else None
            lipsync = await asyncio.to_thread(self._lipsync)
            session = Session(
                uuid.uuid4().hex,
                s,
                self.engine,
                face,
                portrait_id,
                self.metrics,
                self.render_pool,
                process,
                voice=voice,
                style=style,
                chat=chat,
                persona_id=persona.id if persona is not None else None,
                lipsync=lipsync,
                avatar=video.info.name if video is not None else None,
                memos=self.memos,
            )
            session.owner, session.client = who.tenant, client
            session.on_ended = self._on_ended
            try:
                answer = await session.answer(offer_sdp, peer_audio)
            except (ValueError, InvalidAccessError, InvalidStateError, InternalError) as e:
                await session.close("bad offer")
                raise BadOffer(f"the SDP offer was refused: {e}") from e
            self.sessions[session.id] = session
        finally:
            self._reserved -= 1
        self.metrics.sessions_created.inc()
        log.info("session %s opened (%d live)", session.id, len(self.sessions))
        return session, answer

    def _lipsync(self) -> LipsyncModel | None:
        try:
            return self.engine.lipsync()
        except LipsyncError as e:  # sessions still speak text; audio streams are refused with the reason
            log.warning("sessions take no audio: %s", e)
            return None

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
        overloaded = self.load.overloaded()
        if overloaded:
            self.metrics.sessions_rejected.inc()
            raise SessionLimitError(overloaded)
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
        raise SessionLimitError(f"{self._at_limit()}; close one or try again later")

    def using_avatar(self, tenant: str, name: str) -> list[Session]:
        """The live sessions that show a tenant's video avatar."""
        return [x for x in self.sessions.values() if x.owner == tenant and x.avatar == name]

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

    def _at_limit(self) -> str:
        return f"this server already runs {self.settings.max_sessions} live sessions (its limit)"

    def full(self) -> str | None:
        """Why a new session would be refused now (at ``max_sessions``, or frames coming late), or None."""
        if len(self.sessions) + self._reserved >= self.settings.max_sessions:
            return self._at_limit()
        return self.load.overloaded()

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.settings.idle_timeout_s / 4))
            now = time.monotonic()
            self.load.sample(now)
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
