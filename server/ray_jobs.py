"""Render and dub jobs on a Ray cluster (``TALKER_RAY_ADDRESS`` / ``talker serve --ray``).

The SQLite ``JobStore`` stays the source of truth. A ``JobDispatcher`` thread in the API process claims
queued render and dub jobs as the cluster has room for them and hands each to an ``Executor``; a worker
runs it with the same code as the in-process runners (``JobRunner.execute``), on files in the shared data
folder: inputs are read from and the MP4 written to ``jobs/<id>/`` there, so no file passes through the
API process's memory. The worker reports progress in ``jobs/<id>/.progress`` (JSON), which the
dispatcher copies into the store; a cancelled job gets a ``jobs/<id>/.cancel`` marker, which the worker
checks at every frame. A worker that dies (its process or its node lost) has its job queued again, to run
wherever the cluster has room, until ``job_attempts`` is used up. Each Ray worker process keeps its
loaded models (voice, face landmarks, rigged portraits) between jobs.

Nothing here imports ``ray`` until a ``RayExecutor`` is made, so without Ray configured the package is
not needed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from server.jobs import RUNNING, Job, JobStore
from server.metrics import Metrics
from server.settings import Settings

if TYPE_CHECKING:
    from server.engine import Engine

log = logging.getLogger("talker.server")

RAY_KINDS = ("render", "dub")
"""Job kinds the cluster runs; any other kind stays with the in-process runners."""

PROGRESS_FILE = ".progress"
CANCEL_FILE = ".cancel"
_WORKER_ENV = ("TALKER_PROVENANCE", "TALKER_C2PA_CERT", "TALKER_C2PA_KEY", "GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")
"""Environment the API process passes on to Ray's workers (MP4 marks and their signing key)."""


@dataclass(frozen=True)
class WorkerOptions:
    """What a worker needs from the server's settings to run a job the way the server would."""

    framing: str = "bust"
    tts_threads: int = 1
    cv_threads: int = 1


@dataclass(frozen=True)
class Outcome:
    """How a job ended on a worker. ``status``: "done", "failed" or "cancelled"."""

    status: str
    result_file: str | None = None
    duration_s: float | None = None
    error: str | None = None
    worker: str = ""


class WorkerLost(Exception):
    """The worker running a job died (its process or node is gone): the job did not end, it was cut off."""


class Executor(Protocol):
    """Where jobs run. ``submit`` returns a handle; ``wait`` returns the handles whose job has ended;
    ``outcome`` says how (raising ``WorkerLost`` when its worker died)."""

    def capacity(self) -> int: ...

    def submit(self, job: Job, files_dir: Path, options: WorkerOptions) -> Any: ...

    def wait(self, handles: list[Any], timeout_s: float) -> list[Any]: ...

    def outcome(self, handle: Any) -> Outcome: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------------- worker side
class FolderJobStore:
    """The part of ``JobStore`` a ``JobRunner`` uses, on a worker: progress and cancellation through files
    in the job's folder, and the job's end kept for the dispatcher."""

    def __init__(self, files_dir: Path) -> None:
        self.files_dir = files_dir
        self.ended: Outcome | None = None

    def job_dir(self, job_id: str) -> Path:
        return self.files_dir / job_id

    def set_progress(self, job_id: str, progress: float, stage: str) -> None:
        d = self.job_dir(job_id)
        tmp = d / f"{PROGRESS_FILE}.{os.getpid()}"
        try:
            tmp.write_text(json.dumps({"progress": progress, "stage": stage}))
            tmp.replace(d / PROGRESS_FILE)
        except FileNotFoundError:  # the job was deleted: the next check stops it
            pass

    def is_cancelled(self, job_id: str) -> bool:
        d = self.job_dir(job_id)
        return (d / CANCEL_FILE).exists() or not d.is_dir()

    def finish(self, job_id: str, result: Path, duration_s: float) -> bool:
        self.ended = Outcome("done", str(result), float(duration_s))
        return True

    def fail(self, job_id: str, reason: str) -> None:
        self.ended = Outcome("failed", error=reason)


@functools.lru_cache(maxsize=2)
def _worker_engine(options: WorkerOptions) -> Engine:
    """One engine per worker process and options, loaded on its first job and kept for the next ones."""
    import cv2

    from server.engine import Engine

    if options.cv_threads:
        cv2.setNumThreads(options.cv_threads)
    return Engine(tts_threads=options.tts_threads, framing=options.framing)


def run_job(job: Job, files_dir: str, options: WorkerOptions, engine: Engine | None = None) -> Outcome:
    """Run one job on this worker with the in-process runners' code; returns how it ended (a Ray task).
    ``engine``: models already loaded (tests); else this process's own, loaded once."""
    from server.job_runner import JobRunner

    where = f"{socket.gethostname()}:{os.getpid()}"
    store = FolderJobStore(Path(files_dir))
    if store.is_cancelled(job.id):
        return Outcome("cancelled", worker=where)
    runner = JobRunner("talker-ray-job", cast(JobStore, store), engine or _worker_engine(options), Metrics())
    runner.execute(job)
    if store.ended is None:  # JobCancelled: the marker was seen
        return Outcome("cancelled", worker=where)
    ended = store.ended
    return Outcome(ended.status, ended.result_file, ended.duration_s, ended.error, where)


# ------------------------------------------------------------------------------------------- API side
@dataclass
class _InFlight:
    job: Job
    handle: Any
    started: float
    cancel_sent: bool = False


class JobDispatcher(threading.Thread):
    """Claims queued render and dub jobs while ``executor`` has room, mirrors their progress into the store,
    passes cancellations on, and settles each job when it ends: done, failed, or (its worker lost) queued
    again until ``max_attempts`` is used up."""

    def __init__(
        self,
        store: JobStore,
        executor: Executor,
        metrics: Metrics,
        options: WorkerOptions,
        max_attempts: int,
        poll_s: float = 0.25,
    ) -> None:
        super().__init__(name="talker-job-dispatcher", daemon=True)
        self.store = store
        self.executor = executor
        self.metrics = metrics
        self.options = options
        self.max_attempts = max_attempts
        self.poll_s = poll_s
        self._stop_event = threading.Event()
        self._inflight: dict[str, _InFlight] = {}

    @property
    def running(self) -> int:
        """Jobs handed to the executor and not yet settled."""
        return len(self._inflight)

    def stop(self) -> None:
        """Stop claiming and settling; jobs still out stay 'running' in the store and are queued again when
        the server starts next (``JobStore.recover``)."""
        self._stop_event.set()
        self.store.wake_all()

    def close(self) -> None:
        """Stop, wait for this thread, and let the executor go (Ray ends the jobs this process started)."""
        self.stop()
        self.join(timeout=30)
        self.executor.close()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the dispatcher must outlive a cluster hiccup; the jobs stay in the store
                log.exception("job dispatcher step failed; trying again")
                self._stop_event.wait(2.0)

    def step(self) -> None:
        """One round: claim what fits, wait a little for jobs to end, settle them, mirror progress."""
        self._claim()
        if not self._inflight:
            self.store.wait_for_work(self.poll_s * 4)
            return
        ended = set(self.executor.wait([f.handle for f in self._inflight.values()], self.poll_s))
        for job_id, f in list(self._inflight.items()):
            if f.handle in ended:
                del self._inflight[job_id]
                self._settle(f)
            else:
                self._mirror(f)

    def _claim(self) -> None:
        room = self.executor.capacity() - len(self._inflight)
        while room > 0 and not self._stop_event.is_set():
            job = self.store.claim_next(kinds=RAY_KINDS)
            if job is None:
                return
            try:
                handle = self.executor.submit(job, self.store.files_dir, self.options)
            except Exception as e:  # noqa: BLE001 - the cluster cannot be reached: back to the queue, no try spent
                log.exception("could not hand job %s to the cluster", job.id)
                reason = f"the cluster did not take it ({type(e).__name__})"
                self.store.requeue(job.id, reason, self.max_attempts, spend=False)
                self._stop_event.wait(2.0)
                return
            self._inflight[job.id] = _InFlight(job, handle, time.perf_counter())
            room -= 1

    def _mirror(self, f: _InFlight) -> None:
        d = self.store.job_dir(f.job.id)
        if not f.cancel_sent and self._cancelled(f.job.id):
            try:
                (d / CANCEL_FILE).touch()
            except FileNotFoundError:  # deleted: the worker sees the folder gone
                pass
            f.cancel_sent = True
        try:
            state = json.loads((d / PROGRESS_FILE).read_text())
        except (OSError, ValueError):
            return
        self.store.set_progress(f.job.id, float(state["progress"]), str(state["stage"]))

    def _cancelled(self, job_id: str) -> bool:
        """Cancelled or deleted, here or through another server process sharing the store."""
        if self.store.is_cancelled(job_id):
            return True
        now = self.store.get(job_id)
        return now is None or now.status != RUNNING

    def _settle(self, f: _InFlight) -> None:
        job = f.job
        try:
            out = self.executor.outcome(f.handle)
        except WorkerLost as e:
            log.warning("job %s lost its worker: %s", job.id, e)
            self._cleanup(job.id)
            (self.store.job_dir(job.id) / "result.mp4").unlink(missing_ok=True)
            self.store.requeue(job.id, "its worker was lost", self.max_attempts)
            return
        self._cleanup(job.id)
        if out.status == "done" and out.result_file:
            assert out.duration_s is not None
            if self.store.finish(job.id, Path(out.result_file), out.duration_s):
                self.metrics.job_seconds.observe(time.perf_counter() - f.started)
            else:  # cancelled as it ended
                Path(out.result_file).unlink(missing_ok=True)
        elif out.status == "failed":
            self.store.fail(job.id, out.error or "the job failed")
        else:
            current = self.store.get(job.id)
            if current is not None and current.status == RUNNING:  # stopped without being cancelled here
                self.store.requeue(job.id, "its worker stopped it", self.max_attempts)

    def _cleanup(self, job_id: str) -> None:
        d = self.store.job_dir(job_id)
        for name in (PROGRESS_FILE, CANCEL_FILE):
            (d / name).unlink(missing_ok=True)


class RayExecutor:
    """Jobs as Ray tasks (``num_cpus`` each) on the cluster at ``address`` ("auto", "HOST:PORT" or
    "ray://HOST:PORT"). Retries are the dispatcher's: Ray retries nothing itself."""

    def __init__(self, address: str, num_cpus: float = 1.0, env: dict[str, str] | None = None) -> None:
        try:
            import ray
        except ImportError as e:
            raise RuntimeError("TALKER_RAY_ADDRESS is set but Ray is not installed: pip install 'talker[ray]'") from e
        self._ray = ray
        if not ray.is_initialized():
            ray.init(
                address=address,
                namespace="talker",
                runtime_env={"env_vars": env or {}},
                logging_level=logging.WARNING,
                configure_logging=False,
            )
        self.num_cpus = num_cpus
        self._task = ray.remote(num_cpus=num_cpus, max_retries=0, retry_exceptions=False)(run_job)
        self._capacity = (0, 0.0)

    def capacity(self) -> int:
        """Jobs the cluster's live nodes can run at once (re-read every 2 s)."""
        n, at = self._capacity
        if time.monotonic() - at > 2.0:
            cpus = sum(float(node["Resources"].get("CPU", 0)) for node in self._ray.nodes() if node.get("Alive"))
            n = int(cpus // self.num_cpus)
            self._capacity = (n, time.monotonic())
        return n

    def submit(self, job: Job, files_dir: Path, options: WorkerOptions) -> Any:
        return self._task.options(name=f"talker-{job.kind or 'render'}-{job.id[:8]}").remote(
            job, str(files_dir), options
        )

    def wait(self, handles: list[Any], timeout_s: float) -> list[Any]:
        ready, _ = self._ray.wait(handles, num_returns=len(handles), timeout=timeout_s, fetch_local=False)
        return list(ready)

    def outcome(self, handle: Any) -> Outcome:
        exc = self._ray.exceptions
        try:
            return cast(Outcome, self._ray.get(handle))
        except exc.RayTaskError as e:  # the job's own code raised what the runner does not catch
            cause = getattr(e, "cause", e)
            return Outcome("failed", error=f"the job failed on its worker ({type(cause).__name__}: {cause})")
        except exc.TaskCancelledError:
            return Outcome("cancelled")
        except exc.RayError as e:  # the worker process or its node died, or its result was lost with it
            raise WorkerLost(type(e).__name__) from e

    def close(self) -> None:
        self._ray.shutdown()


def worker_env(data_dir: Path) -> dict[str, str]:
    """The environment Ray's workers get from the API process: where the data is, and how MP4s are marked."""
    env = {k: os.environ[k] for k in _WORKER_ENV if k in os.environ}
    env["TALKER_DATA_DIR"] = str(data_dir)
    return env


def start_on_ray(settings: Settings, store: JobStore, metrics: Metrics) -> JobDispatcher:
    """Connect to the cluster at ``settings.ray_address`` and start dispatching render and dub jobs to it;
    the store's in-process runners leave those kinds alone from now on."""
    executor = RayExecutor(settings.ray_address or "auto", settings.ray_job_cpus, worker_env(settings.data_dir))
    store.delegated = RAY_KINDS
    options = WorkerOptions(settings.framing, settings.tts_threads, settings.cv_threads)
    dispatcher = JobDispatcher(store, executor, metrics, options, settings.job_attempts)
    dispatcher.start()
    log.info("render and dub jobs run on the Ray cluster at %s", settings.ray_address)
    return dispatcher
