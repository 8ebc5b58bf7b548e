"""Server settings: environment variables with the ``TALKER_`` prefix (or a ``.env`` file).

Every limit the server enforces lives here, so an operator finds them in one place and tests override
them by passing ``Settings(...)`` to ``create_app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from talker.db import check_url

AUDIO_SAMPLE_RATE = 48_000
"""WebRTC audio rate (Hz): Opus runs at 48 kHz; sessions produce audio at this rate."""

AUDIO_FRAME_SAMPLES = 960
"""Samples per WebRTC audio frame (20 ms at 48 kHz)."""


def _split_urls(value: object) -> object:
    """Accept a list or one comma-separated string (``stun:a:3478,stun:b:3478``)."""
    if isinstance(value, str):
        return [u.strip() for u in value.split(",") if u.strip()]
    return value


class Settings(BaseSettings):
    """Live sessions, render jobs and HTTP limits. Env: ``TALKER_<FIELD>`` (e.g. ``TALKER_MAX_SESSIONS=8``)."""

    model_config = SettingsConfigDict(env_prefix="TALKER_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local/share/talker", description="jobs and uploads")

    # live sessions
    max_sessions: int = Field(default=4, ge=1, le=256, description="concurrent live sessions; more get HTTP 429")
    admit_max_late_pct: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="refuse new sessions (HTTP 429) while more than this share of video frames came late over the "
        "last 10 s (0: only max_sessions decides)",
    )
    idle_timeout_s: float = Field(
        default=300.0, gt=0, description="close a session after this long without say/interrupt"
    )
    max_session_s: float = Field(default=3600.0, gt=0, description="close a session this long after it was opened")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="close a session whose peer never connects")
    fps: float = Field(default=25.0, description="video frame rate of sessions and renders; 48000/fps must be whole")
    size: int = Field(default=512, ge=64, le=2048, description="frame width and height in pixels (even)")
    framing: Literal["bust", "head"] = Field(
        default="bust", description="portraits framed on head and shoulders (bust) or closer on the face (head)"
    )
    lead_frames: int = Field(default=2, ge=1, le=25, description="frames rendered ahead of the send clock")
    idle_memo_mb: int = Field(
        default=96,
        ge=0,
        le=4096,
        description="memory per portrait in live sessions for its listening frames, which its sessions show again "
        "each time the idle loop comes round instead of rendering them (about 75 MB holds a 512x512 portrait's "
        "whole loop; 0: none kept)",
    )
    idle_memo_keep: int = Field(
        default=2,
        ge=0,
        le=64,
        description="portraits whose idle-loop memo is kept after their last session closes, the most recently "
        "shown first, so their next session starts with the loop in memory (each holds up to IDLE_MEMO_MB)",
    )
    say_queue: int = Field(default=8, ge=1, le=256, description="utterances waiting per session; more get HTTP 429")
    max_say_chars: int = Field(default=2000, ge=1, le=20_000, description="longest text for one say request")
    first_piece_chars: int = Field(
        default=30,
        ge=10,
        le=400,
        description="a first sentence longer than this is split at clauses, so speech starts sooner",
    )
    seed: int = Field(default=0, description="seed of every live session's motion (blinks, head drift, gestures)")
    provenance: bool = Field(
        default=True,
        description="mark live frames and audio as synthetic (MP4s follow the TALKER_PROVENANCE environment variable, "
        "which sets this too; docs/provenance.md); off drops the machine-readable marking the EU AI Act asks for",
    )
    label: str | None = Field(
        default=None, max_length=80, description="visible disclosure drawn on every live frame, e.g. 'AI-generated'"
    )
    lipsync_model: Path | None = Field(
        default=None,
        description="folder of the lip-sync model (config.json + model.safetensors) that moves the mouth for audio "
        "streamed into sessions; default: the packaged model (motion/assets/lipsync)",
    )
    audio_in_buffer_ms: int = Field(
        default=80,
        ge=0,
        le=2000,
        description="audio streamed into a session waits this long before it plays: a jitter buffer that also gives "
        "the lip-sync model the audio it looks ahead into (56 ms for the packaged model) before a frame is "
        "rendered; less: sooner sound, but the mouth may lag it",
    )
    audio_in_max_ahead_s: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="streamed audio a session holds before it plays; a client sending faster is no longer read",
    )
    audio_in_max_message_bytes: int = Field(
        default=1 << 20, ge=1024, le=64 << 20, description="largest binary message on a session's audio socket"
    )
    debug_markers: bool = Field(
        default=False, description="stamp frame numbers into video and beeps into audio (for bench_server only)"
    )

    # ICE servers handed to the server's peer connections and to the browser page
    stun_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_username: str | None = None
    turn_credential: str | None = None

    # HTTP: who may call (see docs/security.md)
    api_key: str | None = Field(
        default=None, description="one key for one tenant ('default', an admin): every API call must carry it"
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="JSON file of keys, each mapped to a tenant: "
        '{"keys": [{"key": "...", "tenant": "acme", "admin": false}]} (or "key_sha256" instead of "key")',
    )
    allow_no_auth: bool = Field(
        default=False, description="serve on an address beyond loopback without any API key (everyone is admin)"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="web origins (scheme://host:port) besides the server's own that may send API requests from a "
        "browser; any other origin gets 403",
    )
    tenant_max_sessions: int = Field(default=4, ge=1, le=256, description="live sessions per tenant")
    tenant_max_jobs: int = Field(default=20, ge=1, le=10_000, description="queued or running render jobs per tenant")
    tenant_max_storage_bytes: int = Field(
        default=2 * 1024**3, ge=1024**2, description="portraits, personas and job files kept per tenant"
    )
    session_rate_per_min: int = Field(
        default=30, ge=1, le=10_000, description="session offers per client address per minute; more get 429"
    )
    auth_failures_per_min: int = Field(
        default=10, ge=1, le=10_000, description="failed authentications per client address per minute; more get 429"
    )
    pending_per_client: int = Field(
        default=4, ge=1, le=64, description="sessions of one client address that may wait for their peer at once"
    )
    offer_grace_s: float = Field(
        default=3.0,
        gt=0,
        description="an unconnected session older than this gives its slot to a new offer when the server is full",
    )
    decode_slots: int = Field(default=1, ge=1, le=16, description="uploaded images decoded at once")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="largest portrait upload")
    max_video_bytes: int = Field(default=500 * 1024 * 1024, ge=1024, description="largest video upload (dubs)")
    max_video_s: float = Field(default=600.0, gt=0, description="longest video or speech to dub (seconds)")
    max_image_pixels: int = Field(default=40_000_000, ge=1024, le=40_000_000, description="largest portrait (w*h)")

    # render jobs
    job_workers: int = Field(default=1, ge=0, le=16, description="render job threads (0: queue only, nothing runs)")
    job_attempts: int = Field(default=2, ge=1, le=10, description="tries per job when a restart interrupts it")
    tts_threads: int = Field(default=1, ge=1, le=64, description="onnxruntime threads of the voice (non-spinning)")
    cv_threads: int = Field(default=1, ge=0, le=64, description="OpenCV threads per render call (0: OpenCV's default)")
    render_processes: bool = Field(
        default=True, description="render each session in a process of its own (else in a thread: one core in all)"
    )
    render_nice: int = Field(
        default=0, ge=0, le=19, description="niceness of the render processes (the server process's speech goes first)"
    )
    preload_models: bool = Field(default=True, description="load the voice and face detector at start-up")

    # render and dub jobs on a Ray cluster (server/ray_jobs.py); unset: the in-process runners run them
    ray_address: str | None = Field(
        default=None,
        description="run render and dub jobs on the Ray cluster at this address ('auto', 'HOST:6379' or "
        "'ray://HOST:10001'); its workers must see data_dir at the same path",
    )
    ray_job_cpus: float = Field(default=1.0, gt=0, le=64, description="CPUs a job holds on a Ray worker")
    instance: str | None = Field(
        default=None,
        max_length=64,
        description="this process's name when several share data_dir: after a restart it runs again only the "
        "jobs it was running (unset: every job left running)",
    )

    # records shared by every process (jobs, personas, portrait owners); unset: SQLite files in the data folders
    database_url: str | None = Field(
        default=None,
        description="postgresql://USER:PASSWORD@HOST:PORT/DB: jobs, personas and portrait owners in that database, "
        "shared by every server process (each must see data_dir and persona_dir at the same path)",
    )

    # personas (the same store as `talker persona`, in data_dir unless given)
    persona_dir: Path | None = Field(
        default=None, description="folder of personas.sqlite3 and persona_faces/ (default: data_dir, as the CLI)"
    )
    persona_voice_embeddings: bool = Field(
        default=True, description="choose persona voices by sentence embeddings (else by keywords: no model load)"
    )
    facegen_model: Path | None = Field(
        default=None, description="local diffusers folder: faces generated from descriptions (else bundled portraits)"
    )
    facegen_controlnet: Path | None = Field(default=None, description="face-landmark ControlNet folder, if separate")

    # chat: POST /sessions/{id}/chat answers through an OpenAI-compatible endpoint
    chat_base_url: str | None = Field(
        default=None,
        description="default chat endpoint (API root, e.g. http://127.0.0.1:11434/v1) for sessions whose persona "
        "names none; unset: /chat repeats the text",
    )
    chat_model: str = Field(default="llama3.2", description="model name of the default chat endpoint")
    chat_api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        description="NAME of the environment variable holding the key of chat_base_url (sent to it only)",
    )
    chat_endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="more chat endpoints personas may name, as JSON {base URL: NAME of its key's environment "
        'variable, or ""}; each key is sent only to its own URL. Any other URL is refused',
    )
    chat_history_turns: int = Field(default=8, ge=0, le=100, description="past exchanges sent with each chat turn")
    chat_first_piece_chars: int = Field(
        default=10,
        ge=1,
        le=400,
        description="first_piece_chars for the first sentence of a chat reply: longer, it is split at its clauses "
        "(only at , ; : marks), so the reply's opening words are heard sooner",
    )

    @field_validator("stun_urls", "turn_urls", "allowed_origins", mode="before")
    @classmethod
    def _urls(cls, v: object) -> object:
        return _split_urls(v)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str | None) -> str | None:
        return check_url(v) if v and v.strip() else None

    @field_validator("fps")
    @classmethod
    def _fps(cls, v: float) -> float:
        if not 1 <= v <= 60:
            raise ValueError(f"fps must be between 1 and 60, got {v}")
        spf = AUDIO_SAMPLE_RATE / v
        if abs(spf - round(spf)) > 1e-9:
            raise ValueError(f"fps {v} does not divide {AUDIO_SAMPLE_RATE} Hz into whole samples per frame")
        return float(v)

    @field_validator("size")
    @classmethod
    def _even(cls, v: int) -> int:
        return v - v % 2

    @field_validator("lipsync_model")
    @classmethod
    def _lipsync_model(cls, v: Path | None) -> Path | None:
        if v is not None:  # loaded once here, so a folder without a usable model fails at start, by name
            from talker.stages import LipsyncError, LipsyncModel

            try:
                LipsyncModel.load(v)
            except LipsyncError as e:
                raise ValueError(f"lipsync_model: {e}") from e
        return v

    @field_validator("label")
    @classmethod
    def _label(cls, v: str | None) -> str | None:
        if v is not None and not (v.strip() and v.isascii() and v.isprintable()):
            raise ValueError(f"label {v!r}: printable ASCII text (the frame's font has no other letters)")
        return v

    @model_validator(mode="after")
    def _turn(self) -> Settings:
        if self.turn_urls and not (self.turn_username and self.turn_credential):
            raise ValueError("turn_urls need turn_username and turn_credential")
        return self

    @property
    def samples_per_frame(self) -> int:
        """Audio samples (48 kHz) per video frame."""
        return int(round(AUDIO_SAMPLE_RATE / self.fps))

    @property
    def personas_root(self) -> Path:
        """Where the persona store lives."""
        return self.persona_dir or self.data_dir

    @property
    def frame_size(self) -> tuple[int, int]:
        return (self.size, self.size)

    def ice_servers(self) -> list[dict[str, object]]:
        """ICE servers in the browser's ``RTCIceServer`` shape."""
        out: list[dict[str, object]] = []
        if self.stun_urls:
            out.append({"urls": list(self.stun_urls)})
        if self.turn_urls:
            out.append(
                {"urls": list(self.turn_urls), "username": self.turn_username, "credential": self.turn_credential}
            )
        return out
