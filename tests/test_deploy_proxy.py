"""deploy/haproxy.cfg in front of two real ``talker serve`` processes: sessions stick to the process that
answered their offer, a full fleet answers 429, and a killed process takes only its own sessions along."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.testing import free_port
from tools.rtc_client import AvatarClient

ROOT = Path(__file__).resolve().parents[1]
CAPACITY = 2  # sessions per process


def _wait_http(url: str, timeout: float = 120.0) -> None:
    t_end = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < t_end, f"{url} did not come up"
        time.sleep(0.5)


@dataclass
class Fleet:
    proxy: str  # the proxy's URL
    apis: list[str]  # each process's own URL
    procs: list[subprocess.Popen[bytes]]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (scripts/setup.sh installs it)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TALKER_SIZE": "256", "TALKER_PERSONA_VOICE_EMBEDDINGS": "false"}
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "server", "--port", str(p), "--max-sessions", str(CAPACITY)],
            env={**env, "TALKER_DATA_DIR": str(tmp_path / "data")},  # one data folder, as in deploy/
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"api{i}.log", "wb"),  # noqa: SIM115 - closed with the process
        )
        for i, p in enumerate(ports, 1)
    ]
    proxy_port = free_port()
    proxy = None
    try:
        for p in ports:
            _wait_http(f"http://127.0.0.1:{p}/health")
        proxy = subprocess.Popen(
            ["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
            env={
                **os.environ,
                "TALKER_PROXY_BIND": f"127.0.0.1:{proxy_port}",
                "TALKER_API1": f"127.0.0.1:{ports[0]}",
                "TALKER_API2": f"127.0.0.1:{ports[1]}",
            },
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "haproxy.log", "wb"),  # noqa: SIM115
        )
        _wait_http(f"http://127.0.0.1:{proxy_port}/health")
        time.sleep(2.5)  # both processes' first capacity checks
        yield Fleet(f"http://127.0.0.1:{proxy_port}", [f"http://127.0.0.1:{p}" for p in ports], procs)
    finally:
        for pr in [proxy, *procs]:
            if pr is not None and pr.poll() is None:
                pr.send_signal(signal.SIGINT)
        for pr in [proxy, *procs]:
            if pr is not None:
                try:
                    pr.wait(30)
                except subprocess.TimeoutExpired:
                    pr.kill()


def _owner(apis: list[str], sid: str) -> int:
    """Which process holds a session (asked directly, past the proxy)."""
    found = [i for i, api in enumerate(apis) if httpx.get(f"{api}/sessions/{sid}", timeout=10).status_code == 200]
    assert len(found) == 1, (sid, found)
    return found[0]


@pytest.mark.slow
def test_sessions_stick_to_their_process_and_a_full_fleet_answers_429(fleet: Fleet) -> None:
    proxy, apis, procs = fleet.proxy, fleet.apis, fleet.procs

    async def go() -> None:
        clients: list[AvatarClient] = []
        try:
            for _ in range(2 * CAPACITY):
                c = AvatarClient(proxy)
                await c.connect()
                await asyncio.wait_for(c.connected.wait(), 30)
                await c.wait_frames(5, timeout=30)
                clients.append(c)
                await asyncio.sleep(2.5)  # the proxy's capacity check sees the new count
            owners = [_owner(apis, str(c.session_id)) for c in clients]
            assert sorted(owners) == [0] * CAPACITY + [1] * CAPACITY, owners
            health = [httpx.get(f"{api}/health").json() for api in apis]
            assert [h["accepting_sessions"] for h in health] == [False, False]

            # every call of a session reaches its process (a wrong one would answer 404), many times over
            for c in clients:
                for _ in range(4):
                    assert (await c.http.get(f"/sessions/{c.session_id}")).status_code == 200
                assert (await c.say("Hello there.")).status_code in (200, 202)
                assert (await c.interrupt()).status_code == 200

            # the fleet is full: the next offer is refused with a time to come back
            r = httpx.post(f"{proxy}/sessions", json={"sdp": clients[0].pc.localDescription.sdp, "type": "offer"})
            assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0, (r.status_code, r.text)

            # one process dies: only its sessions end
            doomed = owners[0]
            procs[doomed].send_signal(signal.SIGKILL)
            procs[doomed].wait(10)
            await asyncio.sleep(3.0)  # the proxy marks it down
            for c, o in zip(clients, owners):
                r = await c.http.get(f"/sessions/{c.session_id}")
                # a dead process's session is gone (503: its process is down; 404 from another one)
                assert r.status_code in ((404, 503) if o == doomed else (200,)), (o, r.status_code)
            survivors = [c for c, o in zip(clients, owners) if o != doomed]
            before = [len(c.received.video) for c in survivors]
            await asyncio.sleep(1.0)
            assert all(len(c.received.video) > b for c, b in zip(survivors, before)), "survivors' video goes on"

            # a slot frees on the live process: the next session goes there
            closing = survivors.pop()
            assert (await closing.http.delete(f"/sessions/{closing.session_id}")).status_code == 204
            await asyncio.sleep(2.5)
            new = AvatarClient(proxy)
            clients.append(new)
            await new.connect()
            await asyncio.wait_for(new.connected.wait(), 30)
            assert _owner([apis[1 - doomed]], str(new.session_id)) == 0
            for c in [*survivors, new]:
                assert (await c.http.delete(f"/sessions/{c.session_id}")).status_code == 204
        finally:
            for c in clients:
                await c.close(delete=False)

    asyncio.run(go())
