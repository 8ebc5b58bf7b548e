"""The worker threads that run queued render, dub and video-avatar jobs of a ``JobStore`` with the shared
engine."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from server.avatars import AvatarStore
from server.engine import Engine
from server.jobs import Job, JobCancelled, JobStore
from server.metrics import Metrics
from server.tenancy import DEFAULT_TENANT
from talker.avatar_player import VideoAvatar
from talker.persona import Persona, PersonaError
from talker.pipeline import Pipeline, RenderSettings
from talker.portrait import ImageError
from talker.stages import NoFaceError, TextError, TTSError
from talker.video import VideoError
from talker.video_avatar import VideoAvatarError

log = logging.getLogger("talker.server")


class JobRunner(threading.Thread):
    """Runs queued jobs one after another with the shared engine (TTS yields to live sessions)."""

    def __init__(
        self, name: str, store: JobStore, engine: Engine, metrics: Metrics, avatars: AvatarStore | None = None
    ) -> None:
        """``avatars``: where video avatars are prepared and found (None: avatar jobs fail)."""
        super().__init__(name=name, daemon=True)
        self.avatars = avatars
        self.store = store
        self.engine = engine
        self.metrics = metrics
        self._stop_event = threading.Event()
        self.current: str | None = None

    def stop(self) -> None:
        self._stop_event.set()
        self.store.wake_all()

    def execute(self, job: Job) -> None:
        """Run one claimed job to its end in this thread, reporting to the store (a Ray worker's entry)."""
        self._execute(job)

    def run(self) -> None:
        while not self._stop_event.is_set():
            job = self.store.claim_next()
            if job is None:
                self.store.wait_for_work(1.0)
                continue
            self.current = job.id
            try:
                self._execute(job)
            finally:
                self.current = None

    def _execute(self, job: Job) -> None:
        store = self.store
        t0 = time.perf_counter()
        out = store.job_dir(job.id) / "result.mp4"
        last_write = [0.0]

        def check() -> None:
            if store.is_cancelled(job.id) or self._stop_event.is_set():
                raise JobCancelled(job.id)

        def progress(done: int, total: int) -> None:
            check()
            now = time.monotonic()
            if now - last_write[0] > 0.25 or done == total:
                last_write[0] = now
                store.set_progress(job.id, 0.2 + 0.8 * done / max(total, 1), "render")

        try:
            if job.kind == "avatar":
                try:
                    self._prepare_avatar(job, check)
                except (JobCancelled, VideoAvatarError, VideoError, NoFaceError):
                    raise
                except Exception as e:  # noqa: BLE001 - a clip nobody has seen may fail anywhere: the job fails
                    log.exception("avatar job %s failed", job.id)
                    raise VideoAvatarError(f"the clip could not be prepared ({type(e).__name__}: {e})") from e
                return
            if job.kind == "dub":
                duration = self._dub(job, out, check, progress)
                if store.finish(job.id, out, duration):
                    self.metrics.job_seconds.observe(time.perf_counter() - t0)
                else:
                    out.unlink(missing_ok=True)
                return
            size = (job.size, job.size)
            store.set_progress(job.id, 0.01, "face")
            settings = RenderSettings(fps=job.fps, size=size, seed=job.seed)
            video_avatar = self._video_avatar(job)
            if video_avatar is not None:
                settings = replace(settings, fps=video_avatar.fps, size=video_avatar.size)
            if job.persona:
                persona = Persona.from_dict(json.loads(job.persona))
                persona = replace(persona, face_path=job.portrait_file or persona.face_path)
                avatar = video_avatar or self.engine.persona_avatar(persona, size, cache=False)
                voice = self.engine.voice_for(persona.voice_id, persona.voice_params)
                pipeline = Pipeline(tts=voice, detector=self.engine.detector)  # type: ignore[arg-type]  # any TTS
                settings = replace(settings, style=persona.motion_style())
            else:
                portrait = Path(job.portrait_file) if job.portrait_file else None
                avatar = video_avatar or self.engine.prepare_avatar_file(portrait, size)
                pipeline = self.engine.pipeline
            check()
            store.set_progress(job.id, 0.05, "tts")
            speech = pipeline.synthesize(job.text)
            check()
            store.set_progress(job.id, 0.2, "render")
            result = self.engine.pipeline.render_mp4(avatar, speech, out, settings, progress)
            if store.finish(job.id, out, result.duration_s):
                self.metrics.job_seconds.observe(time.perf_counter() - t0)
            else:
                out.unlink(missing_ok=True)
        except JobCancelled:
            out.unlink(missing_ok=True)
            if self._stop_event.is_set() and not store.is_cancelled(job.id):
                pass  # shutting down: the job stays 'running' and is retried after the restart
        except (TextError, ImageError, NoFaceError, TTSError, PersonaError, VideoAvatarError, VideoError) as e:
            store.fail(job.id, self._public(job, str(e)))
        except (ValueError, OSError, RuntimeError) as e:
            log.exception("render job %s failed", job.id)
            store.fail(job.id, self._public(job, f"{type(e).__name__}: {e}"))

    def _video_avatar(self, job: Job) -> VideoAvatar | None:
        """The video avatar a render job speaks with (None: a portrait or persona's face). Raises
        ``VideoAvatarError`` when it was deleted after the job was queued."""
        params = json.loads(job.params or "{}")
        name = params.get("avatar")
        if not name:
            return None
        folder = Path(params.get("folder") or "")
        if not (folder / "avatar.json").is_file():  # (a folder of the shared data folder on a Ray worker too)
            raise VideoAvatarError(f"the video avatar {name!r} was deleted after the job was queued")
        return VideoAvatar(folder)

    def _prepare_avatar(self, job: Job, check: Callable[[], None]) -> None:
        """An avatar job: prepare the uploaded clip as the tenant's video avatar, then drop the clip."""
        if self.avatars is None:
            raise VideoAvatarError("this server keeps no video avatars")
        params = json.loads(job.params or "{}")
        folder = self.store.job_dir(job.id)
        last_write = [0.0]
        shares = {"track": (0.0, 0.7), "write": (0.7, 0.28), "done": (0.98, 0.02)}

        def progress(stage: str, share: float) -> None:
            check()
            now = time.monotonic()
            if now - last_write[0] > 0.25:
                last_write[0] = now
                lo, span = shares.get(stage, (0.0, 0.0))
                self.store.set_progress(job.id, min(0.99, lo + span * share), stage)

        owner = job.owner or DEFAULT_TENANT
        size = (job.size, job.size)
        name = params["name"]
        info = self.avatars.prepare(
            owner, folder / params["video"], name, size, self.engine.framing, params.get("face_index"), progress
        )
        (folder / params["video"]).unlink(missing_ok=True)  # (the avatar's own files are what stays)
        if not self.store.finish(job.id, folder, info.n_frames / info.fps):  # cancelled at the very end
            self.avatars.delete(owner, name)

    def _public(self, job: Job, message: str) -> str:
        """A failure's reason without this server's file paths (the job's own files go by their names)."""
        folder = str(self.store.job_dir(job.id))
        return message.replace(folder + "/", "").replace(folder, "the job")

    def _dub(self, job: Job, out: Path, check: Callable[[], None], progress: Callable[[int, int], None]) -> float:
        """A dub job: the new speech (the recording aligned, or the text spoken), then the video re-synced.
        Returns the result's duration in seconds."""
        from talker.dub import DubSettings, dub_video, new_speech

        params = json.loads(job.params or "{}")
        folder = self.store.job_dir(job.id)
        self.store.set_progress(job.id, 0.01, "speech")
        audio = folder / params["audio"] if params.get("audio") else None
        speech, _ = new_speech(audio, job.text or None, params.get("voice_id"))
        check()
        self.store.set_progress(job.id, 0.05, "dub")
        settings = DubSettings(fit=params.get("fit", "loop"), face_index=params.get("face_index"), seed=job.seed)

        def dub_progress(done: int, total: int) -> None:
            progress(done, total)

        result = dub_video(folder / params["video"], speech, out, settings, dub_progress)
        return float(result.duration_s)
