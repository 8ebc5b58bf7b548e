"""Render-job throughput on a local Ray cluster with 1, 2... worker nodes, against the in-process runner.

    python -m benchmarks.bench_ray_jobs --jobs 8 --workers 1,2 --size 256

For each worker count a cluster is started on this machine (a head with no CPUs for jobs, and that many
worker nodes of ``--cpus`` CPUs each), the app is pointed at it (``TALKER_RAY_ADDRESS``), every worker
runs one job first (its models load), then ``--jobs`` renders are queued at once and timed from the
first POST to the last one done. The in-process runner (one job thread, the default) runs the same jobs
for comparison. Prints jobs per minute and appends a row to ``benchmarks/results.tsv``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from benchmarks.results import command_line, record
from server.app import create_app
from server.settings import Settings

TEXT = "Good morning. Thank you for coming in today, we will start in a minute."
ROOT = Path(__file__).resolve().parents[1]


def _run_jobs(client: TestClient, n: int, timeout: float = 1800.0) -> float:
    """Queue ``n`` renders at once; seconds until the last one is done."""
    t0 = time.perf_counter()
    ids = []
    for i in range(n):
        r = client.post("/renders", data={"text": TEXT, "seed": str(i)})
        r.raise_for_status()
        ids.append(r.json()["job_id"])
    pending = set(ids)
    while pending:
        for job_id in list(pending):
            job = client.get(f"/renders/{job_id}").json()
            if job["status"] == "done":
                pending.discard(job_id)
            elif job["status"] not in ("queued", "running"):
                raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{len(pending)} jobs not done after {timeout} s")
        time.sleep(0.2)
    return time.perf_counter() - t0


def _settings(data_dir: Path, size: int, **kw: Any) -> Settings:
    return Settings(
        data_dir=data_dir, size=size, render_processes=False, persona_voice_embeddings=False, max_sessions=1, **kw
    )


def on_ray(workers: int, cpus: int, jobs: int, size: int) -> float:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(workers):
            cluster.add_node(num_cpus=cpus)
        with tempfile.TemporaryDirectory() as d:
            settings = _settings(Path(d), size, job_workers=0, preload_models=False, ray_address=cluster.address)
            with TestClient(create_app(settings)) as c:
                _run_jobs(c, workers * cpus)  # each worker process loads its models
                return _run_jobs(c, jobs)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


def in_process(jobs: int, size: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        with TestClient(create_app(_settings(Path(d), size, job_workers=1))) as c:
            _run_jobs(c, 1)
            return _run_jobs(c, jobs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8, help="renders timed per setting")
    ap.add_argument("--workers", default="1,2", help="worker node counts, comma-separated")
    ap.add_argument("--cpus", type=int, default=1, help="CPUs (jobs at once) per worker node")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTHONPATH", str(ROOT))  # the workers import this checkout
    lines = []
    load = [os.getloadavg()[0]]
    wall = in_process(args.jobs, args.size)
    lines.append(f"in-process (1 job thread): {args.jobs} jobs in {wall:.1f} s = {60 * args.jobs / wall:.1f} jobs/min")
    print(lines[-1], flush=True)
    load.append(os.getloadavg()[0])
    for w in [int(x) for x in args.workers.split(",")]:
        wall = on_ray(w, args.cpus, args.jobs, args.size)
        rate = 60 * args.jobs / wall
        lines.append(f"Ray {w} worker(s) x {args.cpus} CPU: {args.jobs} jobs in {wall:.1f} s = {rate:.1f} jobs/min")
        print(lines[-1], flush=True)
        load.append(os.getloadavg()[0])
    lines.append(f"{args.size}x{args.size}, {len(TEXT)}-character text; load average {min(load):.1f}-{max(load):.1f}")
    print(lines[-1])
    record(command_line("benchmarks.bench_ray_jobs", argv), "; ".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
