"""Request and response bodies of the HTTP API (they make the OpenAPI docs at /docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MAX_SEED = 2**32 - 1
"""Largest seed a request may give (seeds are 32-bit)."""


class Problem(BaseModel):
    detail: str = Field(description="what is wrong, naming the bad value")


class Offer(BaseModel):
    sdp: str = Field(max_length=200_000, description="the browser's SDP offer (recvonly audio + video)")
    type: Literal["offer"] = "offer"
    portrait_id: str = Field(default="default", max_length=64, description="'default' or an id from POST /portraits")
    persona_id: str | None = Field(
        default=None,
        max_length=64,
        description="a persona from POST /personas: its face, voice, manner and chat endpoint (portrait_id ignored)",
    )
    avatar: str | None = Field(
        default=None,
        max_length=64,
        description="a video avatar from POST /avatars, by name: its loop is the face (portrait_id ignored); with "
        "persona_id, the persona brings its voice, manner and chat endpoint",
    )
    peer_audio: Literal["ignore", "speak"] = Field(
        default="ignore",
        description="what the avatar does with an audio track the offer sends (sendrecv): 'speak' plays it with the "
        "mouth lip-synced, as audio streamed to /sessions/{id}/audio; 'ignore' (a user's microphone) does not echo it",
    )


class Answer(BaseModel):
    session_id: str
    sdp: str
    type: Literal["answer"] = "answer"
    fps: float
    width: int
    height: int
    idle_timeout_s: float
    max_session_s: float


class SayBody(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    interrupt: bool = Field(default=False, description="stop what is being said first (barge-in)")


class SayAccepted(BaseModel):
    session_id: str
    utterance_id: int
    waiting: int = Field(description="say requests waiting for the voice, this one included")


class ChatBody(BaseModel):
    text: str = Field(min_length=1, max_length=20_000, description="what the user says to the avatar")
    interrupt: bool = Field(default=False, description="stop what is being said (and any reply) first")


class ChatAccepted(BaseModel):
    session_id: str
    utterance_id: int
    waiting: int = Field(description="messages waiting for a reply (chat) or for the voice (repeat), this one included")
    mode: Literal["chat", "repeat"] = Field(
        description="chat: the reply of the session's endpoint is spoken as it streams; repeat: no endpoint, "
        "the text itself is spoken"
    )


class InterruptResult(BaseModel):
    session_id: str
    interrupted: bool
    idle_from_frame: int | None = Field(default=None, description="first frame index that is idle again")


class SessionInfo(BaseModel):
    session_id: str
    state: Literal["new", "connected", "closed"]
    portrait_id: str = Field(description="the portrait's id, persona:<id> or avatar:<name>")
    persona_id: str | None = None
    avatar: str | None = Field(default=None, description="the video avatar shown, by name")
    chat_endpoint: str | None = Field(default=None, description="base URL answering /chat (None: it repeats)")
    speaking: bool
    age_s: float
    idle_s: float
    frames_sent: int
    frames_late: int
    frames_repeated: int = Field(
        default=0, description="frames not sent because nothing moved: the client keeps showing the one before"
    )
    frames_recalled: int = Field(
        default=0, description="listening frames shown from the memo of the idle loop instead of rendered"
    )
    idle_memo_mb: float = Field(default=0.0, description="memory the memo of the idle loop holds (MB)")
    render_cpu_cores: float | None = Field(
        default=None, description="cores the session's render process has used since the session started"
    )
    speech_gaps: int = Field(
        default=0, description="sentences whose streamed speech paused because its next piece came too late"
    )
    audio_frames_sent: int
    fps: float
    say_queue: int
    segments_waiting: int
    frames_rendered_ahead: int
    close_reason: str | None
    errors: list[str]
    audio_in_s: float = Field(default=0.0, description="seconds of audio streamed into the session")


class PortraitInfo(BaseModel):
    portrait_id: str
    width: int | None = None
    height: int | None = None
    format: str | None = None


class AvatarInfo(BaseModel):
    name: str
    status: Literal["queued", "preparing", "ready", "failed", "cancelled"] = Field(
        description="queued or preparing (see progress and stage), ready for sessions and renders, or failed "
        "(see error)"
    )
    progress: float = Field(description="0..1 of the preparation")
    stage: str = Field(description="queued, track (following the face), write (the loop), done or failed")
    error: str | None = Field(default=None, description="why the clip could not be prepared")
    job_id: str | None = Field(default=None, description="the preparation job (while queued, preparing or failed)")
    created_at: float | None = None
    source: str | None = Field(default=None, description="the uploaded clip's file name")
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = Field(default=None, description="frames in the loop")
    loop_s: float | None = Field(default=None, description="seconds the loop lasts")
    span_s: tuple[float, float] | None = Field(default=None, description="the stretch of the clip the loop is from")
    crossfade_frames: int | None = Field(default=None, description="loop frames blended from its end into its start")
    mouths: int | None = Field(default=None, description="open mouths of the clip kept to draw speech with")
    idle_mouth: Literal["own", "shut"] | None = Field(
        default=None,
        description="own: the clip listens, its frames play as filmed; shut: it talks, its mouth was shut in the loop",
    )
    prepare_s: float | None = Field(default=None, description="seconds the preparation took")
    bytes: int | None = Field(default=None, description="prepared data on disk (counts against your storage quota)")
    notes: list[str] = Field(default_factory=list, description="what was skipped or chosen (cuts, faces, talking)")


class VoiceInfo(BaseModel):
    voice_id: str
    sample_rate: int
    language: str | None = None


class JobInfo(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done", "failed", "cancelled", "deleted"]
    progress: float = Field(description="0..1")
    stage: str
    error: str | None
    attempts: int
    portrait_id: str = Field(description="the portrait's id, 'upload', persona:<id> or avatar:<name>")
    persona_id: str | None = None
    fps: float
    size: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration_s: float | None = Field(default=None, description="length of the rendered video")
    result_url: str | None = None


class Health(BaseModel):
    status: Literal["ok"]
    models_loaded: bool
    sessions: int
    max_sessions: int
    jobs_queued: int
    jobs_running: int
    uptime_s: float
    accepting_sessions: bool = Field(
        description="a new session fits now (sessions < max_sessions, and frames_late_pct within admit_max_late_pct)"
    )
    frames_late_pct: float | None = Field(
        default=None, description="video frames that came late over the last 10 s, % (None: too few frames shown)"
    )
    jobs_on: Literal["process", "ray"] = Field(description="where render and dub jobs run")


class ClientConfig(BaseModel):
    ice_servers: list[dict[str, object]]
    fps: float
    width: int
    height: int
    max_say_chars: int
    max_upload_bytes: int


class PersonaChat(BaseModel):
    base_url: str
    model: str
    api_key_env: str | None = Field(description="NAME of the environment variable with the key (never the key)")
    system_prompt: str
    temperature: float | None = None
    max_tokens: int | None = None


class PersonaInfo(BaseModel):
    persona_id: str
    name: str
    description: str
    voice_id: str = Field(description="voice bank id (piper:..., espeak:..., flite:...)")
    voice_params: dict[str, object] = Field(description="rate, pitch_semitones, variant, expressiveness, volume")
    face_source: str = Field(description="image, bundled:<name>, generated or generated-from-image")
    face_points: list[list[float]] | None = Field(
        description="five guide points (x, y pixels) when the face was located by them, else None (detected)"
    )
    face_url: str
    expression: str
    intensity: float
    idle: str = Field(description="idle manner: calm, neutral or lively")
    chat: PersonaChat
    created_at: float


class VoiceRankInfo(BaseModel):
    voice_id: str
    score: float
    summary: str


class PersonaCreated(PersonaInfo):
    voice_ranking: list[VoiceRankInfo] = Field(description="the voices the description was matched against, best first")
    portrait_ranking: list[tuple[str, float]] = Field(
        description="bundled portraits scored against the description (when no image was given and no generator)"
    )
    notes: list[str] = Field(description="how the face and voice were chosen")


class MarkReport(BaseModel):
    found: bool
    output_id: str | None = Field(description="the 32-bit id of the output that carries the mark (hex), when readable")
    z: float = Field(description="confidence: the mark's correlation peak in standard deviations (unmarked media < 6)")


class VerifyReport(BaseModel):
    found: bool = Field(description="a watermark or a C2PA manifest is there")
    kind: Literal["image", "video", "audio"]
    pixels: MarkReport | None = Field(description="the watermark in the frames (None for audio)")
    audio: MarkReport | None = Field(description="the watermark in the audio (None without an audio track)")
    manifest: Literal["valid", "invalid", "absent"] = Field(description="the C2PA manifest's state")
    manifest_trusted: bool = Field(description="its signer chains to a trust anchor this server knows")
    manifest_detail: str = ""
