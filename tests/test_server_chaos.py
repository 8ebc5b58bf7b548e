"""Restart chaos for render jobs: the server is killed with SIGKILL at random moments while it works
through a queue; after the last restart every job is done (a playable MP4) or failed with its reason.
Slow: ``TALKER_CHAOS_KILLS`` kills (default 50) over ``TALKER_CHAOS_JOBS`` jobs (default 20)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.testing import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def _start(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TALKER_JOB_WORKERS": "1",
        "TALKER_SIZE": "128",
        "TALKER_RENDER_PROCESSES": "0",
        "TALKER_JOB_ATTEMPTS": "3",
        "TALKER_PERSONA_VOICE_EMBEDDINGS": "0",
    }
    cmd = [sys.executable, "-m", "talker.cli", "serve", "--port", str(port), "--data-dir", str(data)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not come up")


def test_killed_servers_lose_no_job(tmp_path: Path) -> None:
    kills = int(os.environ.get("TALKER_CHAOS_KILLS", "50"))
    n_jobs = int(os.environ.get("TALKER_CHAOS_JOBS", "20"))
    rng = random.Random(7)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    accepted: list[str] = []
    proc = _start(tmp_path, port)
    try:
        _wait_up(url, proc)
        for i in range(n_jobs):
            r = httpx.post(url + "/renders", data={"text": f"Job number {i}. Papa bought a map."}, timeout=30)
            assert r.status_code == 202, r.text
            accepted.append(r.json()["job_id"])
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 4.0))  # while jobs render, or while the server starts up again
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc = _start(tmp_path, port)
            if rng.random() < 0.7:
                _wait_up(url, proc)
        _wait_up(url, proc)
        t_end = time.monotonic() + 60 * n_jobs
        while time.monotonic() < t_end:
            jobs = {j["job_id"]: j for j in httpx.get(url + "/renders", timeout=30).json()}
            if all(jobs[j]["status"] in ("done", "failed") for j in accepted if j in jobs):
                break
            time.sleep(1.0)
        jobs = {j["job_id"]: j for j in httpx.get(url + "/renders", timeout=30).json()}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert set(accepted) <= set(jobs), "no accepted job is missing"
    for jid in accepted:
        job = jobs[jid]
        assert job["status"] in ("done", "failed"), job
        if job["status"] == "failed":
            assert "restart" in job["error"], job
        else:
            mp4 = tmp_path / "jobs" / jid / "result.mp4"
            assert mp4.stat().st_size > 1000
    done = sum(jobs[j]["status"] == "done" for j in accepted)
    print(f"chaos: {kills} kills, {len(accepted)} jobs: {done} done, {len(accepted) - done} failed with the reason")
