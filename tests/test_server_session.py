"""Live sessions over real WebRTC on loopback: an aiortc client talks to the server in a thread."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.settings import Settings
from server.testing import LiveServer, shared_engine
from tools.rtc_client import AvatarClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), debug_markers=True, max_sessions=4, job_workers=0)
    with LiveServer(settings, shared_engine()) as srv:
        yield srv


async def open_client(server: LiveServer, frames: int = 5, markers: bool = True) -> AvatarClient:
    c = AvatarClient(server.url, decode_markers=markers)
    await c.connect()
    await asyncio.wait_for(c.connected.wait(), 20)
    await c.wait_frames(frames)
    return c


def session_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("talker-render", "talker-speech"))]


def test_offer_answer_and_continuous_tracks(server: LiveServer) -> None:
    async def go() -> tuple[AvatarClient, dict[str, Any]]:
        c = await open_client(server, frames=75)
        status = await c.status()
        await c.close()
        return c, status

    c, status = asyncio.run(go())
    video, audio = c.received.video, c.received.audio
    assert len(video) >= 75 and video[0].width == 512 and video[0].height == 512
    # one sample counter: video pts advance 3600 (90 kHz) per frame, audio 960 (48 kHz) per 20 ms; an idle
    # frame whose image is the one before (nothing moved) is not sent, so some steps are whole multiples
    vsteps = np.diff([v.pts for v in video])
    assert vsteps.min() == 3600 and (vsteps % 3600 == 0).all()
    assert status["frames_repeated"] > 0, "idle frames that repeat the last image are not sent"
    # silence is Opus DTX: a packet every 400 ms at least, the frames between skipped
    asteps = np.diff([a.pts for a in audio])
    assert asteps.min() == 960 and (asteps % 960 == 0).all() and asteps.max() <= 20 * 960
    audio_s = (audio[-1].pts - audio[0].pts) / 48000
    assert audio_s >= 0.9 * (video[-1].pts - video[0].pts) / 90000, "audio keeps flowing in silence"
    beeps = [a for a in audio if a.beep is not None]
    assert abs(len(beeps) - audio_s) <= 1.5, "one debug beep per second"
    assert max(a.rms for a in audio if a.beep is None) < 0.01, "idle is silent"
    idx = [v.marker.index for v in video if v.marker]
    assert len(idx) >= 0.9 * len(video)
    # (client and server share this process and 2 cores: allow for start-up hiccups)
    assert np.all(np.diff(idx) >= 0), "frames arrive in order"
    last = np.diff(idx[-25:])
    assert (last - 1).sum() <= status["frames_repeated"], "after start-up, a frame not received is a repeat"
    assert last.max() <= 4, "a still picture is sent again at least every 4 frames"
    # idle is alive: the picture changes (head drift, blinks)
    thumbs = np.stack([v.thumb.astype(np.int16) for v in video[5:]])
    assert np.abs(thumbs - thumbs[0]).max() > 10


def test_say_then_interrupt(server: LiveServer) -> None:
    async def go() -> dict[str, Any]:
        c = await open_client(server, frames=10)
        t_say = time.perf_counter()
        r = await c.say("Hello there. This sentence is long, so that it can be interrupted before it ends.")
        assert r.status_code == 202 and r.json()["utterance_id"] == 1
        while not any(v.marker and v.marker.speaking for v in c.received.video):
            await asyncio.sleep(0.01)
            assert time.perf_counter() - t_say < 15, "speech never started"
        t_first = next(v.t for v in c.received.video if v.marker and v.marker.speaking) - t_say
        status = await c.status()
        await asyncio.sleep(0.8)
        t_int = time.perf_counter()
        r = await c.interrupt()
        body = r.json()
        # (silence goes out as a DTX packet every 400 ms: this client decodes a packet once 4 more have come)
        await asyncio.sleep(1.2)
        after = await c.status()
        await c.close()
        return {"c": c, "t_first": t_first, "t_int": t_int, "cut": body, "status": status, "after": after}

    out = asyncio.run(go())
    c: AvatarClient = out["c"]
    assert out["status"]["speaking"] is True
    assert out["t_first"] < 5.0
    cut = out["cut"]
    assert cut["interrupted"] is True
    k = cut["idle_from_frame"]
    marked = [v for v in c.received.video if v.marker]
    assert all(not v.marker.speaking for v in marked if v.marker.index >= k), "nothing spoken after the cut"
    first_idle = next(v for v in marked if v.marker.index >= k)
    assert first_idle.t - out["t_int"] < 1.0, "idle again at the receiver soon (generous: 2 shared cores)"
    hist = server.state.metrics.interrupt_to_idle
    assert hist.count >= 1 and hist.sum / hist.count < 0.25, "server: the first idle frame goes out within frames"
    speaking = [v for v in marked if v.marker.speaking]
    assert speaking and speaking[-1].marker.index == k - 1 or speaking[-1].marker.index < k
    assert out["after"]["speaking"] is False
    # speech is audible while speaking, silent after the cut
    loud = [a.rms for a in c.received.audio if a.t < out["t_int"] and a.t > speaking[0].t]
    assert max(loud) > 0.02
    quiet = [a.rms for a in c.received.audio if a.t > out["t_int"] + 0.35 and a.beep is None]
    assert quiet and max(quiet) < 0.05


def test_twenty_sessions_open_and_close_without_leaks(server: LiveServer) -> None:
    async def count_tasks() -> int:
        return len(asyncio.all_tasks())

    base_tasks = server.call(count_tasks)
    assert session_threads() == []

    async def rounds() -> None:
        for _ in range(5):
            clients = await asyncio.gather(*(open_client(server, frames=3, markers=False) for _ in range(4)))
            assert len(server.state.manager.sessions) == 4
            await asyncio.gather(*(c.close() for c in clients))

    asyncio.run(rounds())
    t_end = time.monotonic() + 15
    while (session_threads() or server.state.manager.sessions) and time.monotonic() < t_end:
        time.sleep(0.1)
    assert server.state.manager.sessions == {}
    assert session_threads() == []
    assert server.call(count_tasks) <= base_tasks + 1
    pool = server.state.manager.render_pool
    assert pool is not None and pool.size == 4, "render processes are reused, not leaked"
    assert len([p for p in multiprocessing.active_children() if p.name == "talker-render"]) <= 8
    m = server.state.metrics
    assert m.sessions_closed.value >= 20


def test_idle_timeout_and_peer_disconnect(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, idle_timeout_s=2.0, job_workers=0, render_processes=False)  # thread mode
    with LiveServer(settings, shared_engine()) as srv:

        async def go() -> tuple[int, str, int, str]:
            a = await open_client(srv, frames=3, markers=False)
            await asyncio.sleep(3.5)
            r = await a.http.get(f"/sessions/{a.session_id}")
            await a.close(delete=False)
            b = await open_client(srv, frames=1, markers=False)
            sid = b.session_id
            await b.pc.close()  # the browser tab goes away without DELETE
            await asyncio.sleep(0.6)
            async with __import__("httpx").AsyncClient(base_url=srv.url) as h:
                r2 = await h.get(f"/sessions/{sid}")
            await b.close(delete=False)
            return r.status_code, r.json()["detail"], r2.status_code, r2.json()["detail"]

        code, detail, code2, detail2 = asyncio.run(go())
        assert code == 404 and "idle for 2 s" in detail
        assert code2 == 404 and "peer connection" in detail2


def test_session_with_an_uploaded_portrait(server: LiveServer) -> None:
    import httpx

    from talker.portrait import default_portrait_path

    data = Path(default_portrait_path()).read_bytes()
    r = httpx.post(server.url + "/portraits", files={"file": ("me.png", data, "image/png")}, timeout=60)
    assert r.status_code == 201, r.text
    pid = r.json()["portrait_id"]

    async def go() -> tuple[list[dict[str, Any]], AvatarClient]:
        c = AvatarClient(server.url, decode_markers=True)
        await c.connect(portrait_id=pid)
        await asyncio.wait_for(c.connected.wait(), 20)
        await c.wait_frames(10)
        listed = (await c.http.get("/sessions")).json()
        await c.close()
        return listed, c

    listed, c = asyncio.run(go())
    assert [s["portrait_id"] for s in listed] == [pid]
    assert listed[0]["state"] == "connected" and listed[0]["frames_sent"] >= 10
    assert c.received.video[-1].width == 512


def test_render_processes_can_run_below_the_server_process() -> None:
    """RENDER_NICE: the render processes yield the cores to the server process's speech and WebRTC."""
    import os

    from server.render_pool import RenderPool

    pool = RenderPool(64, 1, nice=3)
    pool.start()
    try:
        p = pool.lease()
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, p.proc.pid) == min(own + 3, 19)
    finally:
        pool.shutdown()
