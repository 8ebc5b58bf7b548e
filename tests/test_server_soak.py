"""Long checks of the server process (slow): session open/say/close cycles must not grow its memory,
and a soak of mixed traffic must end with every session gone and the server healthy.

``TALKER_SOAK_CYCLES`` (default 100) and ``TALKER_SOAK_MINUTES`` (default 10) size them."""

from __future__ import annotations

import asyncio
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
from tools.rtc_client import AvatarClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class ServerProcess:
    def __init__(self, data: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {
            **os.environ,
            "TALKER_JOB_WORKERS": "1",
            "TALKER_PERSONA_VOICE_EMBEDDINGS": "0",
            "TALKER_SESSION_RATE_PER_MIN": "10000",  # (one test client opens many sessions)
            **env,
        }
        cmd = [sys.executable, "-m", "talker.cli", "serve", "--port", str(self.port), "--data-dir", str(data)]
        self.proc = subprocess.Popen(cmd, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("the server did not come up")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def one_cycle(url: str, text: str) -> None:
    c = AvatarClient(url)
    await c.connect()
    await asyncio.wait_for(c.connected.wait(), 30)
    await c.wait_frames(5, timeout=30)
    r = await c.say(text)
    assert r.status_code == 202, r.text
    await c.wait_frames(10, timeout=30)
    await c.close()


def test_session_cycles_return_their_memory(tmp_path: Path) -> None:
    cycles = int(os.environ.get("TALKER_SOAK_CYCLES", "100"))
    # (no idle memo kept between sessions: it is a cache that fills up to IDLE_MEMO_MB, not a leak)
    srv = ServerProcess(tmp_path, TALKER_IDLE_MEMO_KEEP="0")
    try:
        readings: list[float] = []
        for i in range(cycles):
            asyncio.run(one_cycle(srv.url, "Hello there, this is a short test."))
            if i == 9 or i == cycles - 1:
                time.sleep(3.0)  # let the closed session's threads finish
                readings.append(rss_mb(srv.proc.pid))
        assert httpx.get(srv.url + "/health").json()["sessions"] == 0
    finally:
        srv.stop()
    after_10, after_all = readings
    print(f"server RSS after 10 cycles {after_10:.0f} MB, after {cycles}: {after_all:.0f} MB")
    assert after_all <= after_10 * 1.05, f"RSS grew {after_all / after_10 - 1:.1%} over {cycles - 10} cycles"


def test_a_soak_of_mixed_traffic(tmp_path: Path) -> None:
    minutes = float(os.environ.get("TALKER_SOAK_MINUTES", "10"))
    rng = random.Random(3)
    srv = ServerProcess(tmp_path)
    errors: list[str] = []
    counts = {"sessions": 0, "renders": 0, "personas": 0}
    try:
        t_end = time.monotonic() + 60 * minutes
        while time.monotonic() < t_end:
            kind = rng.choice(["session", "session", "render", "persona"])
            try:
                if kind == "session":
                    asyncio.run(one_cycle(srv.url, rng.choice(["Hi.", "Papa bought a map.", "How are you today?"])))
                    counts["sessions"] += 1
                elif kind == "render":
                    r = httpx.post(srv.url + "/renders", data={"text": "A short render."}, timeout=30)
                    assert r.status_code == 202, r.text
                    counts["renders"] += 1
                else:
                    r = httpx.post(srv.url + "/personas", data={"description": "a calm old man"}, timeout=60)
                    assert r.status_code == 201, r.text
                    httpx.delete(srv.url + f"/personas/{r.json()['persona_id']}", timeout=30)
                    counts["personas"] += 1
            except (AssertionError, httpx.HTTPError, TimeoutError, RuntimeError) as e:
                errors.append(f"{kind}: {e}")
        health = httpx.get(srv.url + "/health", timeout=10).json()
    finally:
        srv.stop()
    print(f"soak {minutes:g} min: {counts}, errors {len(errors)}")
    assert errors == [] and health["status"] == "ok" and health["sessions"] == 0
