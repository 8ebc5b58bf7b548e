"""A client with no route to the server's media address reaches a live session through coturn.

Two network namespaces on this host: the server's (10.201.0.0/24) and the client's (10.200.0.0/24), with
no route between them. The host reaches both: it forwards the client's HTTP to the server, and runs
coturn listening on the client's side and relaying from the server's side, as a TURN server on the
edge of a NAT'd network would. Needs root (``ip netns``) and coturn (scripts/setup.sh installs it)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
KEY = "turn-test-key"
TURN_USER, TURN_PASSWORD = "talker", "turn-secret"
CLIENT_NET, SERVER_NET = "10.200.0", "10.201.0"

CLIENT = """
import asyncio, json, sys
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from tools.rtc_client import AvatarClient

async def main(url, key, turn):
    c = AvatarClient(url, api_key=key)
    servers = [RTCIceServer(urls=turn, username=sys.argv[4], credential=sys.argv[5])] if turn else []
    c.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
    out = {"connected": False, "frames": 0, "local": None, "remote": None}
    try:
        await c.connect()
        await asyncio.wait_for(c.connected.wait(), 25)
        out["connected"] = True
        await c.wait_frames(25, timeout=30)
        out["frames"] = len(c.received.video)
        ice = c.pc.getTransceivers()[0].receiver.transport.transport
        pair = ice._connection._nominated[1]  # aioice's nominated candidate pair (no public accessor)
        out["local"] = pair.local_candidate.type
        out["remote"] = pair.remote_candidate.host
        out["say"] = (await c.say("Hello from behind the NAT.")).status_code
    except (asyncio.TimeoutError, TimeoutError):
        pass
    finally:
        await c.close()
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"""


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@dataclass
class Nets:
    client: str  # the client's namespace
    server: str  # the server's namespace


@pytest.fixture
def nets() -> Iterator[Nets]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("turnserver") is None:
        pytest.skip("needs root, iproute2 and coturn (scripts/setup.sh installs coturn)")
    tag = uuid.uuid4().hex[:6]
    n = Nets(f"tk-cli-{tag}", f"tk-srv-{tag}")
    made: list[str] = []
    try:
        for ns, net, side in ((n.client, CLIENT_NET, "c"), (n.server, SERVER_NET, "s")):
            host_if, ns_if = f"tk{side}h{tag}", f"tk{side}n{tag}"
            _sh("ip", "netns", "add", ns)
            made.append(ns)
            _sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            _sh("ip", "link", "set", ns_if, "netns", ns)
            _sh("ip", "addr", "add", f"{net}.1/24", "dev", host_if)
            _sh("ip", "link", "set", host_if, "up")
            _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{net}.2/24", "dev", ns_if)
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    except subprocess.CalledProcessError as e:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"network namespaces cannot be made here: {e.stderr.decode().strip()}")
    try:
        yield n
    finally:
        for ns in made:  # (its veth pair goes with it)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _forward(listen: tuple[str, int], target: tuple[str, int], stop: threading.Event) -> None:
    """Forward TCP connections (the client's HTTP to the API) until ``stop``."""

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except ConnectionError:
            pass
        finally:
            w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tr, tw = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(r, tw), pipe(tr, w))

    async def main() -> None:
        server = await asyncio.start_server(handle, *listen)
        while not stop.is_set():
            await asyncio.sleep(0.1)
        server.close()

    asyncio.run(main())


def _client(nets: Nets, tmp_path: Path, turn: str) -> dict[str, object]:
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    url = f"http://{CLIENT_NET}.1:8000"
    cmd = ["ip", "netns", "exec", nets.client, sys.executable, str(script), url, KEY, turn, TURN_USER, TURN_PASSWORD]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_client_without_a_route_to_the_server_reaches_a_session_through_turn(nets: Nets, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TALKER_DATA_DIR": str(tmp_path / "data"), "TALKER_SIZE": "256"}
    server = subprocess.Popen(
        ["ip", "netns", "exec", nets.server, sys.executable, "-m", "server", "--host", f"{SERVER_NET}.2"]
        + ["--port", "8000", "--api-key", KEY, "--max-sessions", "2"],
        env={**env, "TALKER_PERSONA_VOICE_EMBEDDINGS": "false"},
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    turn = subprocess.Popen(
        ["turnserver", "-n", f"--listening-ip={CLIENT_NET}.1", "--listening-port=3478", f"--relay-ip={SERVER_NET}.1"]
        + ["--min-port=50000", "--max-port=50100", "--realm=talker", "--lt-cred-mech", "--fingerprint"]
        + [f"--user={TURN_USER}:{TURN_PASSWORD}", "--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout"],
        stdout=open(tmp_path / "turn.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    stop = threading.Event()
    forward = threading.Thread(
        target=_forward, args=((f"{CLIENT_NET}.1", 8000), (f"{SERVER_NET}.2", 8000), stop), daemon=True
    )
    try:
        t_end = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://{SERVER_NET}.2:8000/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < t_end, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        forward.start()
        # without TURN the offer and answer go through, but no media path exists
        direct = _client(nets, tmp_path, "")
        assert direct["connected"] is False, direct
        # with TURN the session plays, over the relay
        relayed = _client(nets, tmp_path, f"turn:{CLIENT_NET}.1:3478?transport=udp")
        assert relayed["connected"] is True and int(str(relayed["frames"])) >= 25, relayed
        assert relayed["local"] == "relay" and relayed["remote"] == f"{SERVER_NET}.2", relayed
        assert relayed["say"] in (200, 202), relayed
        print(f"\nwithout TURN: {direct}\nthrough coturn: {relayed}")
    finally:
        stop.set()
        for p in (server, turn):
            p.terminate()
        for p in (server, turn):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
