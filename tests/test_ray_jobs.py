"""Render and dub jobs on a Ray cluster: the dispatcher's bookkeeping with workers that die (fast, real jobs
on worker threads), and a real local cluster whose worker node is killed mid-run (slow)."""

from __future__ import annotations

import io
import os
import signal
import time
import wave
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.jobs import CANCELLED, DONE, FAILED, QUEUED, Job, JobStore
from server.metrics import Metrics
from server.ray_jobs import CANCEL_FILE, PROGRESS_FILE, JobDispatcher, Outcome, WorkerLost, WorkerOptions, run_job
from server.testing import shared_engine

SIZE = 128
ROOT = Path(__file__).resolve().parents[1]


class ThreadWorkers:
    """An executor whose workers are threads of this process running the real job code; ``doomed`` job ids
    lose their worker on their next attempt, after it has reported progress (as a killed node would)."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(workers)
        self.workers = workers
        self.doomed: dict[str, int] = {}  # job id -> attempts still to lose
        self.ran: list[tuple[str, int]] = []  # (job id, attempt) of every submission

    def capacity(self) -> int:
        return self.workers

    def submit(self, job: Job, files_dir: Path, options: WorkerOptions) -> Future[Outcome]:
        self.ran.append((job.id, job.attempts))
        if self.doomed.get(job.id, 0) > 0:
            self.doomed[job.id] -= 1
            return self.pool.submit(self._die, job, files_dir)
        return self.pool.submit(run_job, job, str(files_dir), options, shared_engine())

    @staticmethod
    def _die(job: Job, files_dir: Path) -> Outcome:
        (files_dir / job.id / PROGRESS_FILE).write_text('{"progress": 0.4, "stage": "render"}')
        time.sleep(0.6)
        raise WorkerLost("NodeDiedError")

    def wait(self, handles: list[Any], timeout_s: float) -> list[Any]:
        done, _ = wait_futures(handles, timeout=timeout_s, return_when=FIRST_COMPLETED)
        return list(done)

    def outcome(self, handle: Future[Outcome]) -> Outcome:
        return handle.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    s = JobStore(tmp_path / "jobs.sqlite3", tmp_path / "jobs")
    yield s
    s.close()


def _run(store: JobStore, workers: ThreadWorkers, attempts: int = 2) -> JobDispatcher:
    d = JobDispatcher(store, workers, Metrics(), WorkerOptions(), attempts, poll_s=0.05)
    d.start()
    return d


def _until(cond: Any, timeout: float = 120.0) -> None:
    t_end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < t_end, "timed out"
        time.sleep(0.05)


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as f:
        return np.stack([fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)])


def test_a_job_whose_worker_dies_is_run_again_and_a_twice_lost_one_fails_with_the_reason(
    store: JobStore,
) -> None:
    jobs = [store.create("Hello there.", "default", None, 25.0, SIZE, seed) for seed in range(3)]
    lost_once, lost_twice = jobs[0].id, jobs[2].id
    workers = ThreadWorkers(2)
    workers.doomed = {lost_once: 1, lost_twice: 2}
    seen: list[tuple[str, float]] = []
    d = _run(store, workers)
    try:

        def settled() -> bool:
            for j in jobs:
                now = store.get(j.id)
                assert now is not None
                seen.append((now.stage, now.progress))
            return all(store.get(j.id).status not in (QUEUED, "running") for j in jobs)  # type: ignore[union-attr]

        _until(settled)
    finally:
        d.stop()
        d.join(10)
        workers.close()
    once, ok, twice = (store.get(j.id) for j in jobs)
    assert once is not None and ok is not None and twice is not None
    assert once.status == DONE and once.attempts == 2, once
    assert ok.status == DONE and ok.attempts == 1, ok
    assert twice.status == FAILED and twice.attempts == 2
    assert twice.error == "its worker was lost (2 attempt(s)); not retried again"
    assert not (store.job_dir(twice.id) / "result.mp4").exists()
    assert ("render", 0.4) in seen  # a worker's progress file reached the store while it ran
    # each attempt ran once, in order; nothing is left over in the job folders
    assert sorted(workers.ran) == sorted([(once.id, 1), (once.id, 2), (ok.id, 1), (twice.id, 1), (twice.id, 2)])
    for j in jobs:
        assert not (store.job_dir(j.id) / PROGRESS_FILE).exists()
    # the retried job's video is whole: every frame of its speech, at the job's size
    frames = _frames(Path(str(once.result_file)))
    assert frames.shape[1:3] == (SIZE, SIZE) and once.duration_s is not None
    assert abs(len(frames) - once.duration_s * 25.0) <= 1
    assert frames.std() > 10  # a face, not a blank picture


def test_cancel_reaches_the_worker_through_the_shared_folder(store: JobStore) -> None:
    job = store.create("This is a longer text for the worker to say. " * 4, "default", None, 25.0, SIZE, 0)
    workers = ThreadWorkers(1)
    d = _run(store, workers)
    try:
        _until(lambda: store.get(job.id).stage == "render")  # type: ignore[union-attr]
        assert store.cancel(job.id)
        _until(lambda: d.running == 0, 60)
    finally:
        d.stop()
        d.join(10)
        workers.close()
    now = store.get(job.id)
    assert now is not None and now.status == CANCELLED and now.error == "cancelled by request"
    folder = store.job_dir(job.id)
    assert not (folder / "result.mp4").exists()
    assert not (folder / CANCEL_FILE).exists() and not (folder / PROGRESS_FILE).exists()


def test_delegated_kinds_are_left_to_the_dispatcher(store: JobStore, tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    render = store.create("Hi.", "default", None, 25.0, SIZE, 0)
    dub = store.create_dub({"video.mp4": video}, "Hi.", {"video": "video.mp4"}, 0)
    store.delegated = ("render",)
    claimed = store.claim_next()  # an in-process runner: the dub, never the render
    assert claimed is not None and claimed.id == dub.id
    assert store.claim_next() is None
    claimed = store.claim_next(kinds=("render", "dub"))
    assert claimed is not None and claimed.id == render.id
    # the cluster could not be reached: queued again with its try given back, however often it happens
    for _ in range(3):
        assert store.requeue(render.id, "the cluster did not take it", 2, spend=False)
        claimed = store.claim_next(kinds=("render",))
        assert claimed is not None and claimed.id == render.id and claimed.attempts == 1
    # a lost job that was cancelled meanwhile stays cancelled
    store.cancel(render.id)
    assert store.requeue(render.id, "its worker was lost", 5) is False
    assert store.get(render.id).status == CANCELLED  # type: ignore[union-attr]


def test_a_restarted_process_runs_again_only_its_own_jobs(tmp_path: Path) -> None:
    """Two named server processes share one store; one restarts while each runs a job."""
    db, files = tmp_path / "jobs.sqlite3", tmp_path / "jobs"
    a, b = JobStore(db, files, "api1"), JobStore(db, files, "api2")
    first, second = (a.create("Hi.", "default", None, 25.0, SIZE, s) for s in (0, 1))
    assert a.claim_next() is not None and b.claim_next() is not None
    b.close()
    b = JobStore(db, files, "api2")  # api2 restarted
    assert b.recover(2) == (1, 0)
    assert (a.get(first.id).status, a.get(second.id).status) == ("running", QUEUED)  # type: ignore[union-attr]
    unnamed = JobStore(db, files)  # a single process (no name) takes every job left running
    assert unnamed.recover(2) == (1, 0)
    for s in (a, b, unnamed):
        s.close()


# ------------------------------------------------------------------------------------------------ slow
N_RENDERS = int(os.environ.get("TALKER_RAY_TEST_RENDERS", "6"))
N_DUBS = int(os.environ.get("TALKER_RAY_TEST_DUBS", "2"))
TEXTS = ["Hello there, how are you today?", "Papa bought a map of the old town.", "Good morning to you, my friend."]


def _ended(jobs: list[dict[str, Any]]) -> bool:
    return all(j["status"] not in ("queued", "running") for j in jobs)


def _wait_all(
    client: TestClient, urls: list[str], timeout: float, on_tick: Any = None, until: Any = _ended
) -> list[dict[str, Any]]:
    t_end = time.monotonic() + timeout
    while True:
        jobs = [client.get(u).json() for u in urls]
        if on_tick is not None:
            on_tick(jobs)
        if until(jobs):
            return jobs
        assert time.monotonic() < t_end, [(j["status"], j["stage"], j["progress"]) for j in jobs]
        time.sleep(0.25)


def _wav(mp4: Path) -> bytes:
    """The audio track of an MP4 as 16-bit mono WAV bytes."""
    with av.open(str(mp4)) as f:
        stream = f.streams.audio[0]
        rate = stream.codec_context.sample_rate
        pcm = np.concatenate([fr.to_ndarray().reshape(-1, fr.samples).mean(axis=0) for fr in f.decode(stream)])
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def _submit(client: TestClient, clip: bytes, speech: bytes) -> list[str]:
    """Renders by a persona with a flite voice and dubs of a recording: both make the same video from the same
    request (Piper samples noise and espeak-ng varies by a few samples from call to call, in any process)."""
    r = client.post("/personas", data={"description": "a calm man", "voice_id": "flite:slt"})
    assert r.status_code == 201, r.text
    persona = r.json()["persona_id"]
    urls = []
    for i in range(N_RENDERS):
        r = client.post("/renders", data={"text": TEXTS[i % len(TEXTS)], "seed": str(i), "persona_id": persona})
        assert r.status_code == 202, r.text
        urls.append(f"/renders/{r.json()['job_id']}")
    for i in range(N_DUBS):
        r = client.post(
            "/dubs",
            files={"video": ("clip.mp4", clip, "video/mp4"), "audio": ("speech.wav", speech, "audio/wav")},
            data={"text": "Papa bought a map.", "fit": "hold", "seed": str(i)},
        )
        assert r.status_code == 202, r.text
        urls.append(f"/dubs/{r.json()['job_id']}")
    return urls


def _kill_node(cluster: Any, node: Any) -> None:
    """SIGKILL a Ray node's raylet and every process under it (its workers), as when a machine dies."""
    raylet = node.all_processes["raylet"][0].process.pid
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    doomed, todo = [], [raylet]
    while todo:
        pid = todo.pop()
        doomed.append(pid)
        todo += children.get(pid, [])
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    cluster.remove_node(node, allow_graceful=False)


def _settings(data_dir: Path, **kw: Any) -> Any:
    from server.settings import Settings

    return Settings(
        data_dir=data_dir, size=SIZE, render_processes=False, persona_voice_embeddings=False, max_sessions=1, **kw
    )


@pytest.mark.slow
def test_jobs_on_a_ray_cluster_survive_a_killed_worker_and_match_the_in_process_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray_cluster = pytest.importorskip("ray.cluster_utils")
    import talker
    from server.app import create_app

    # the workers run this checkout's code, and both paths write MP4s without marks (comparable pixels)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TALKER_PROVENANCE", "off")
    clip_path = tmp_path / "clip.mp4"
    talker.render(text="Good morning. We will see.", out=str(clip_path), size=192)
    clip = clip_path.read_bytes()
    talker.render(text="Papa bought a map.", out=str(tmp_path / "speech.mp4"), size=128)
    speech = _wav(tmp_path / "speech.mp4")

    cluster = ray_cluster.Cluster(
        initialize_head=True, connect=False, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        doomed = cluster.add_node(num_cpus=1)
        cluster.add_node(num_cpus=1)
        killed_at: list[float] = []

        def kill_when_both_render(jobs: list[dict[str, Any]]) -> None:
            busy = [j for j in jobs if j["status"] == "running" and j["stage"] in ("render", "dub")]
            if not killed_at and len(busy) >= 2:
                _kill_node(cluster, doomed)
                killed_at.append(time.monotonic())

        ray_dir = tmp_path / "ray"
        settings = _settings(ray_dir, job_workers=0, job_attempts=3, preload_models=False, ray_address=cluster.address)
        with TestClient(create_app(settings)) as c:
            t0 = time.monotonic()
            urls = _submit(c, clip, speech)

            def killed_and_some_running(jobs: list[dict[str, Any]]) -> bool:
                return bool(killed_at) and any(j["status"] == "running" for j in jobs) or _ended(jobs)

            _wait_all(c, urls, timeout=900, on_tick=kill_when_both_render, until=killed_and_some_running)
        # the API process restarts while jobs run: the store has them all, the running ones run again
        with TestClient(create_app(settings)) as c:
            on_ray = _wait_all(c, urls, timeout=900)
            wall = time.monotonic() - t0
            assert killed_at, "the worker was never killed"
            results = [c.get(u + "/result") for u in urls]
    finally:
        cluster.shutdown()
        import ray

        ray.shutdown()

    assert [j["status"] for j in on_ray] == ["done"] * len(urls), on_ray  # 0 lost, all finished
    assert any(j["attempts"] >= 2 for j in on_ray), "no job was running on the killed worker"
    assert all(j["attempts"] <= 3 for j in on_ray)
    retried = sum(j["attempts"] >= 2 for j in on_ray)
    print(f"\n{len(urls)} jobs on Ray, a worker killed, the API restarted: all done, {retried} run again, {wall:.0f} s")

    # the same jobs in-process
    with TestClient(create_app(_settings(tmp_path / "local", job_workers=1), engine=shared_engine())) as c:
        local_urls = _submit(c, clip, speech)
        local = _wait_all(c, local_urls, timeout=900)
        local_results = [c.get(u + "/result") for u in local_urls]
    assert [j["status"] for j in local] == ["done"] * len(urls)

    for k, (r_ray, r_local, j_ray, j_local) in enumerate(zip(results, local_results, on_ray, local)):
        assert j_ray["duration_s"] == j_local["duration_s"], (k, j_ray, j_local)
        a_path, b_path = tmp_path / f"ray{k}.mp4", tmp_path / f"local{k}.mp4"
        a_path.write_bytes(r_ray.content)
        b_path.write_bytes(r_local.content)
        a, b = _frames(a_path), _frames(b_path)
        assert a.shape == b.shape, (k, a.shape, b.shape)
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() == 0, (k, diff.mean(), diff.max())


def test_without_ray_configured_nothing_imports_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from server.app import create_app; from server.settings import Settings; "
        "create_app(Settings(data_dir=sys.argv[1])); import server.ray_jobs; "
        "print('ray' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
