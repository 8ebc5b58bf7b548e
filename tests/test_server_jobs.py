"""Render jobs: queued in SQLite, run to an MP4, and nothing lost when the app restarts."""

from __future__ import annotations

import io
import time
from pathlib import Path

import av
from fastapi.testclient import TestClient
from PIL import Image

from server.app import create_app
from server.jobs import JobStore
from server.settings import Settings
from server.testing import shared_engine

SIZE = 256


def settings(data_dir: Path, workers: int, attempts: int = 2) -> Settings:
    return Settings(data_dir=data_dir, job_workers=workers, job_attempts=attempts, size=SIZE, render_processes=False)


def wait_done(client: TestClient, job_id: str, timeout: float = 120.0) -> dict[str, object]:
    t_end = time.monotonic() + timeout
    seen: list[float] = []
    while time.monotonic() < t_end:
        job = client.get(f"/renders/{job_id}").json()
        seen.append(float(job["progress"]))
        if job["status"] not in ("queued", "running"):
            job["progress_seen"] = seen
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def test_queued_job_survives_a_restart_and_renders(tmp_path: Path) -> None:
    engine = shared_engine()
    # first life: the job is queued but no worker runs it
    with TestClient(create_app(settings(tmp_path, workers=0), engine=engine)) as c:
        r = c.post("/renders", data={"text": "Hello there. Papa bought a map."})
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        assert c.get(f"/renders/{job_id}").json()["status"] == "queued"
        assert c.get("/health").json()["jobs_queued"] == 1
    # second life on the same data dir: it runs
    with TestClient(create_app(settings(tmp_path, workers=1), engine=engine)) as c:
        job = wait_done(c, job_id)
        assert job["status"] == "done", job
        assert job["progress"] == 1.0 and job["attempts"] == 1
        assert str(job["result_url"]).endswith(f"/renders/{job_id}/result")
        r = c.get(f"/renders/{job_id}/result")
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        out = tmp_path / "out.mp4"
        out.write_bytes(r.content)
        with av.open(str(out)) as f:
            v, a = f.streams.video[0], f.streams.audio[0]
            assert (v.codec_context.width, v.codec_context.height) == (SIZE, SIZE)
            assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
            assert float(v.duration * v.time_base) > 1.5
        listed = [j["job_id"] for j in c.get("/renders").json()]
        assert job_id in listed
        assert "talker_render_job_seconds_count 1" in c.get("/metrics").text


def test_interrupted_jobs_are_retried_then_failed_with_a_reason(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3", tmp_path / "jobs")
    retry = store.create("Hi.", "default", None, 25.0, SIZE, 0)
    spent = store.create("Hi.", "default", None, 25.0, SIZE, 0)
    # both were running when the process died; ``spent`` had used its attempts already
    assert store.claim_next() is not None and store.claim_next() is not None
    store.db.execute("UPDATE jobs SET attempts = 2 WHERE id = ?", (spent.id,))
    store.close()
    with TestClient(create_app(settings(tmp_path, workers=1, attempts=2), engine=shared_engine())) as c:
        failed = c.get(f"/renders/{spent.id}").json()
        assert failed["status"] == "failed"
        assert "interrupted by a server restart 2 time(s)" in failed["error"]
        job = wait_done(c, retry.id)
        assert job["status"] == "done" and job["attempts"] == 2
        assert c.get(f"/renders/{spent.id}/result").status_code == 409


def test_cancel_a_running_job(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path, workers=1), engine=shared_engine())) as c:
        text = "This is a longer text. " * 8
        job_id = c.post("/renders", data={"text": text}).json()["job_id"]
        t_end = time.monotonic() + 60
        while c.get(f"/renders/{job_id}").json()["status"] == "queued" and time.monotonic() < t_end:
            time.sleep(0.05)
        r = c.post(f"/renders/{job_id}/cancel")
        assert r.json()["status"] == "cancelled"
        time.sleep(1.0)
        job = c.get(f"/renders/{job_id}").json()
        assert job["status"] == "cancelled" and job["error"] == "cancelled by request"
        assert not (tmp_path / "jobs" / job_id / "result.mp4").exists()
        # a portrait without a face: the job fails with the reason, and the runner goes on
        gray = io.BytesIO()
        Image.new("RGB", (200, 200), (128, 128, 128)).save(gray, format="PNG")
        r = c.post("/renders", data={"text": "Hello."}, files={"portrait": ("gray.png", gray.getvalue(), "image/png")})
        assert r.status_code == 202 and r.json()["portrait_id"] == "upload"
        failed = wait_done(c, r.json()["job_id"])
        assert failed["status"] == "failed" and "no face" in str(failed["error"])
        ok = c.post("/renders", data={"text": "Hello.", "seed": "1"}).json()["job_id"]
        assert wait_done(c, ok)["status"] == "done"
