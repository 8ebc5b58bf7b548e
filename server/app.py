"""The FastAPI app: ``create_app(settings)`` builds it; models load in its lifespan.

Routers (one per resource): sessions (live WebRTC avatar), renders (offline MP4 jobs), dubs, video
avatars, personas, portraits, voices, system (health, metrics, client config). The browser client is
served at ``/``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import cv2
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from server import codec
from server.avatars import AvatarStore
from server.deps import ServerState, require_api_key, upload_pool
from server.engine import Engine
from server.job_runner import JobRunner
from server.jobs import JobStore
from server.manager import SessionManager
from server.metrics import Metrics
from server.middleware import BodyLimit, SameOrigin, Scope
from server.portraits import PortraitStore, UploadError
from server.render_pool import RenderPool
from server.routes import audio, avatars, dubs, personas, portraits, renders, sessions, system, verify, voices
from server.schemas import Problem
from server.session_errors import SessionError
from server.settings import Settings
from server.tenancy import KeyRing, OwnerStore, RateLimiter
from talker.persona import AudioVoiceBank, PersonaError, PersonaMaker, PersonaNotFound, PersonaStore
from talker.portrait import ImageError
from talker.stages import NoFaceError, TextError

log = logging.getLogger("talker.server")

STATIC_DIR = Path(str(files("server").joinpath("static")))


def validation_message(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one sentence naming each bad field ("seed: must be <= 4294967295")."""
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def _methods_of(app: FastAPI, scope: Scope) -> set[str]:
    """The methods the API documents for the request's path (the OpenAPI paths are the routes)."""
    path = scope.get("path", "")
    methods: set[str] = set()
    for template, ops in app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in ops}
    return methods or {"GET"}


def _openapi_without_auth(app: FastAPI) -> None:
    """With no API key configured the schema declares no security (every call is accepted as is)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            schema.get("components", {}).pop("securitySchemes", None)
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    if isinstance(op, dict):
                        op.pop("security", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """The server app. ``engine``: already loaded models to share (tests); else loaded at start-up.

    Raises ``KeyFileError`` for an unusable API keys file."""
    settings = settings or Settings()
    keys = KeyRing.from_settings(settings.api_key, settings.api_keys_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        cv_threads_before = cv2.getNumThreads()
        if settings.cv_threads:
            # one thread per render call: sessions render in parallel threads already, and OpenCV's
            # pool competing with them (and with the voice) made a 16 ms frame take 70 ms on 2 cores
            cv2.setNumThreads(settings.cv_threads)
        eng = engine or Engine(
            tts_threads=settings.tts_threads, framing=settings.framing, lipsync_dir=settings.lipsync_model
        )
        if engine is None and settings.preload_models:
            t0 = time.perf_counter()
            await asyncio.to_thread(eng.load, settings.frame_size)
            log.info("models loaded in %.1f s", time.perf_counter() - t0)
        maker, voice_bank = _persona_maker(settings, eng)
        if settings.preload_models and settings.persona_voice_embeddings:
            # the sentence-embedding model loads now, not on the first persona (its import held the GIL
            # long enough to make live sessions late)
            await asyncio.to_thread(voice_bank.choose, "a calm voice")
        # the models and libraries are loaded for good: keep their millions of objects out of the
        # cyclic GC, whose full passes over them stalled every thread for 100-300 ms (frames late)
        gc.collect()
        gc.freeze()
        metrics = Metrics()
        store = PortraitStore(settings.data_dir / "portraits")
        jobs = JobStore(
            settings.data_dir / "jobs.sqlite3", settings.data_dir / "jobs", settings.instance, settings.database_url
        )
        requeued, failed = jobs.recover(settings.job_attempts)
        if requeued or failed:
            log.info("render jobs after restart: %d queued again, %d failed", requeued, failed)
        dispatcher = None  # render and dub jobs on Ray: the hook to server/ray_jobs.py
        if settings.ray_address:
            from server.ray_jobs import start_on_ray

            dispatcher = await asyncio.to_thread(start_on_ray, settings, jobs, metrics)
        app.state.job_dispatcher = dispatcher
        pool = None
        if settings.render_processes:
            pool = RenderPool(settings.size, settings.max_sessions, settings.cv_threads, settings.render_nice)
            await asyncio.to_thread(pool.start)
        persona_store = PersonaStore(settings.personas_root, settings.database_url)
        codec.install()  # VP8 without libvpx's camera denoiser: half the encode time, sharper frames
        manager = SessionManager(settings, eng, store, metrics, pool, persona_store)
        manager.start()
        owners = OwnerStore(settings.data_dir / "owners.sqlite3", settings.database_url)
        avatar_store = AvatarStore(settings.data_dir, owners)
        runners = [JobRunner(f"talker-job-{i}", jobs, eng, metrics, avatar_store) for i in range(settings.job_workers)]
        for r in runners:
            r.start()
        app.state.talker = ServerState(
            eng,
            manager,
            store,
            jobs,
            metrics,
            time.monotonic(),
            persona_store,
            maker,
            keys,
            owners,
            RateLimiter(settings.session_rate_per_min),
            RateLimiter(settings.auth_failures_per_min),
            upload_pool(settings.decode_slots),
            avatar_store,
        )
        try:
            yield
        finally:
            await manager.shutdown()
            if pool is not None:
                await asyncio.to_thread(pool.shutdown)
            for r in runners:
                r.stop()
            await asyncio.to_thread(_join_all, runners)
            if dispatcher is not None:
                await asyncio.to_thread(dispatcher.close)
            jobs.close()
            owners.close()
            app.state.talker.upload_pool.shutdown(wait=False, cancel_futures=True)
            app.state.talker = None
            cv2.setNumThreads(cv_threads_before)

    app = FastAPI(
        title="talker",
        version="0.1.0",
        summary="A portrait that speaks: live WebRTC avatar sessions and MP4 render jobs.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(SameOrigin, allowed=settings.allowed_origins)
    app.add_middleware(
        BodyLimit,
        upload_limit=settings.max_upload_bytes,
        limits={"/dubs": settings.max_video_bytes, "/avatars": settings.max_video_bytes},  # videos
    )

    @app.exception_handler(SessionError)
    async def _session_error(request: Request, e: SessionError) -> JSONResponse:
        headers = {"Retry-After": "10"} if e.status == 429 else None
        return _problem(e.status, e.message, headers)

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, e: UploadError) -> JSONResponse:
        return _problem(e.status, str(e))

    @app.exception_handler(TextError)
    async def _text_error(request: Request, e: TextError) -> JSONResponse:
        return _problem(422, str(e))

    @app.exception_handler(ImageError)
    async def _image_error(request: Request, e: ImageError) -> JSONResponse:
        return _problem(422, str(e))

    @app.exception_handler(PersonaError)
    async def _persona_error(request: Request, e: PersonaError) -> JSONResponse:
        if isinstance(e, PersonaNotFound):  # (its message names the store's folder on this server)
            return _problem(404, "no such persona")
        return _problem(422, str(e))

    @app.exception_handler(NoFaceError)
    async def _no_face(request: Request, e: NoFaceError) -> JSONResponse:
        return _problem(422, str(e))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return _problem(422, validation_message(e.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        headers = dict(e.headers or {})
        if e.status_code == 405:  # name every method of the path, not only those of the first route matched
            headers["Allow"] = ", ".join(sorted(_methods_of(app, request.scope)))
        return _problem(e.status_code, str(e.detail), headers)

    auth = [Depends(require_api_key)]
    refusals: dict[int | str, dict[str, Any]] = {
        401: {"model": Problem, "description": "no API key (when the server has keys)"},
        403: {"model": Problem, "description": "a wrong API key, or a cross-site request"},
        429: {"model": Problem, "description": "too many wrong keys from this address, or over a limit"},
    }
    routers = (sessions, renders, dubs, avatars, personas, portraits, voices, verify)
    for router in (r.router for r in routers):
        app.include_router(router, dependencies=auth, responses=refusals)
    app.include_router(system.router)
    app.include_router(audio.router)  # (a WebSocket: it checks the key itself, headers or first message)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if not keys.enabled:
        _openapi_without_auth(app)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    return app


def _persona_maker(settings: Settings, engine: Engine) -> tuple[PersonaMaker, AudioVoiceBank]:
    """Personas are made with the engine's face detector and the voice bank; faces are generated from
    descriptions when a diffusers folder is configured (loaded on first use, in a worker thread)."""
    generator: Any = None
    if settings.facegen_model is not None:
        model, controlnet = settings.facegen_model, settings.facegen_controlnet

        def generator() -> Any:
            from talker.facegen import FaceGenerator

            return FaceGenerator(model, controlnet, device="cpu")

    voices = AudioVoiceBank(use_embeddings=settings.persona_voice_embeddings)
    return PersonaMaker(voices=voices, detector=engine.detector, face_generator=generator), voices


KEEP_ALIVE_S = 75
"""How long an idle HTTP connection is kept open (uvicorn's own default is 5 s). Longer than the pools of
proxies and HTTP clients keep an idle connection for reuse (httpx 5 s, aiohttp 15 s, nginx 60 s): a
request sent down a connection just as the server closes it fails with a reset."""


def serve(host: str = "127.0.0.1", port: int = 8000, log_level: str = "info", **overrides: Any) -> None:
    """Run the server with uvicorn (``talker serve``); ``overrides`` replace environment settings."""
    import uvicorn

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    check_exposure(host, settings)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OSError(f"the data folder {settings.data_dir} cannot be written: {e.strerror or e}") from e
    KeyRing.from_settings(settings.api_key, settings.api_keys_file)  # an unusable keys file fails here, not later
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, timeout_keep_alive=KEEP_ALIVE_S)


class ExposureError(ValueError):
    """Serving beyond loopback without any API key, which the deployer did not explicitly allow."""


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse to serve on a non-loopback address with no API key unless ``allow_no_auth`` says so."""
    if settings.api_key or settings.api_keys_file or settings.allow_no_auth or _is_loopback(host):
        return
    raise ExposureError(
        f"refusing to serve on {host} without an API key: anyone who reaches the port could use this server. "
        "Set TALKER_API_KEY (or TALKER_API_KEYS_FILE), or TALKER_ALLOW_NO_AUTH=1 (--allow-no-auth) to accept that"
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _join_all(threads: list[JobRunner]) -> None:
    for t in threads:
        t.join(timeout=30)
