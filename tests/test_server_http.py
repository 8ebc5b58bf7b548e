"""The HTTP surface without media flowing: validation, limits, auth, health, metrics, docs."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCPeerConnection
from fastapi.testclient import TestClient
from PIL import Image

from server.app import create_app
from server.settings import Settings
from server.testing import shared_engine
from talker.portrait import default_portrait_path


def make_offer(kinds: tuple[str, ...] = ("audio", "video"), direction: str = "recvonly") -> str:
    async def go() -> str:
        pc = RTCPeerConnection()
        for k in kinds:
            pc.addTransceiver(k, direction=direction)
        await pc.setLocalDescription(await pc.createOffer())
        sdp = str(pc.localDescription.sdp)
        await pc.close()
        return sdp

    return asyncio.run(go())


def png(w: int, h: int, noise: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (h, w, 3), np.uint8) if noise else np.full((h, w, 3), 128, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        max_sessions=1,
        job_workers=0,
        max_upload_bytes=1_000_000,
        max_image_pixels=600 * 600,
    )
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        yield c


def test_health_config_voices_and_docs(client: TestClient) -> None:
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["max_sessions"] == 1 and h["sessions"] == 0
    cfg = client.get("/config").json()
    assert cfg["fps"] == 25 and cfg["width"] == 512 and cfg["ice_servers"] == []
    voices = client.get("/voices").json()
    assert voices[0]["sample_rate"] == 22050 and "joe" in voices[0]["voice_id"]
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/sessions", "/sessions/{session_id}/say", "/sessions/{session_id}/interrupt", "/renders", "/metrics"):
        assert p in paths
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_bad_offers_are_400_with_the_reason(client: TestClient) -> None:
    r = client.post("/sessions", json={"sdp": "this is not sdp", "type": "offer"})
    assert r.status_code == 400 and "audio" in r.json()["detail"]
    r = client.post("/sessions", json={"sdp": "", "type": "offer"})
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    r = client.post("/sessions", json={"sdp": make_offer(("audio",)), "type": "offer"})
    assert r.status_code == 400 and "video" in r.json()["detail"]
    r = client.post("/sessions", json={"sdp": make_offer(direction="sendonly"), "type": "offer"})
    assert r.status_code == 400 and "sendonly" in r.json()["detail"]
    r = client.post("/sessions", json={"sdp": make_offer(), "type": "answer"})
    assert r.status_code == 422
    r = client.post("/sessions", json={"sdp": make_offer(), "portrait_id": "0123456789abcdef"})
    assert r.status_code == 404 and "portrait" in r.json()["detail"]


def test_unknown_session_is_404(client: TestClient) -> None:
    for method, path in [
        ("get", "/sessions/nope"),
        ("post", "/sessions/nope/interrupt"),
        ("delete", "/sessions/nope"),
    ]:
        r = getattr(client, method)(path)
        assert r.status_code == 404 and "no session nope" in r.json()["detail"]
    r = client.post("/sessions/nope/say", json={"text": "hi"})
    assert r.status_code == 404


def test_session_limit_is_429_and_a_closed_slot_is_reused(client: TestClient) -> None:
    first = client.post("/sessions", json={"sdp": make_offer()})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["type"] == "answer" and "m=video" in body["sdp"] and "m=audio" in body["sdp"]
    assert "a=sendonly" in body["sdp"]
    sid = body["session_id"]
    second = client.post("/sessions", json={"sdp": make_offer()})
    assert second.status_code == 429
    assert "limit" in second.json()["detail"] and second.headers["retry-after"]
    # say validation on a live session
    assert client.post(f"/sessions/{sid}/say", json={"text": "   "}).status_code == 422
    assert client.post(f"/sessions/{sid}/say", json={"text": "?!"}).status_code == 422
    assert client.post(f"/sessions/{sid}/say", json={"text": "x" * 2001}).status_code == 422
    r = client.post(f"/sessions/{sid}/interrupt")
    assert r.status_code == 200 and r.json()["interrupted"] is False
    info = client.get(f"/sessions/{sid}").json()
    assert info["state"] == "new" and info["speaking"] is False
    assert client.delete(f"/sessions/{sid}").status_code == 204
    gone = client.get(f"/sessions/{sid}")
    assert gone.status_code == 404 and "closed by the client" in gone.json()["detail"]
    third = client.post("/sessions", json={"sdp": make_offer()})
    assert third.status_code == 201
    assert client.delete(f"/sessions/{third.json()['session_id']}").status_code == 204
    m = client.get("/metrics").text
    assert "talker_sessions_rejected_total 1" in m and "talker_sessions_created_total 2" in m


def test_uploads_have_specific_errors(client: TestClient) -> None:
    def up(data: bytes, name: str = "p.png") -> tuple[int, str]:
        r = client.post("/portraits", files={"file": (name, data, "image/png")})
        return r.status_code, r.json()["detail"] if r.status_code >= 400 else ""

    assert up(b"") == (400, "the uploaded portrait is empty")
    code, msg = up(b"GIF89a not really" * 10)
    assert code == 415 and "not a readable image" in msg
    code, msg = up(png(700, 700))
    assert code == 422 and "490000 pixels; the limit is 360000" in msg
    code, msg = up(png(16, 16))
    assert code == 422 and "32x32" in msg
    code, msg = up(png(200, 200))
    assert code == 422 and "no face" in msg
    code, msg = up(b"\x89PNG" + bytes(1_030_000))
    assert code == 413 and "limit of 1000000 bytes" in msg
    # far over the limit: refused by the body limit before the upload is parsed
    r = client.post("/portraits", files={"file": ("big.png", bytes(3_000_000), "image/png")})
    assert r.status_code == 413 and "limited to 1000000 bytes" in r.json()["detail"]


def test_portrait_upload_then_render_job(client: TestClient) -> None:
    data = Path(default_portrait_path()).read_bytes()
    r = client.post("/portraits", files={"file": ("me.png", data, "image/png")})
    assert r.status_code == 201, r.text
    pid = r.json()["portrait_id"]
    ids = [p["portrait_id"] for p in client.get("/portraits").json()]
    assert ids[0] == "default" and pid in ids
    job = client.post("/renders", data={"text": "Hello.", "portrait_id": pid})
    assert job.status_code == 202 and job.json()["status"] == "queued"
    jid = job.json()["job_id"]
    assert client.get(f"/renders/{jid}/result").status_code == 409
    assert client.post(f"/renders/{jid}/cancel").json()["status"] == "cancelled"
    assert client.post(f"/renders/{jid}/cancel").status_code == 409
    assert client.get(f"/renders/{jid}").json()["status"] == "cancelled", "a cancelled job keeps its record"
    assert client.delete(f"/renders/{jid}").json()["status"] == "deleted"
    assert client.get(f"/renders/{jid}").status_code == 404
    assert client.post("/renders", data={"text": ""}).status_code == 422
    assert client.post("/renders", data={"text": "hi", "portrait_id": "ffffffffffffffff"}).status_code == 404
    assert client.delete(f"/portraits/{pid}").status_code == 204
    assert client.delete("/portraits/default").status_code == 409


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in (
        "talker_sessions_active",
        "talker_say_first_frame_seconds_bucket",
        "talker_render_frame_seconds_count",
        "talker_video_frames_late_total",
        'talker_render_jobs{status="queued"}',
    ):
        assert name in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


def test_api_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key="s3cret", job_workers=0, render_processes=False)
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/").status_code == 200
        r = c.get("/sessions")
        assert r.status_code == 401 and "API key" in r.json()["detail"]
        assert c.get("/sessions", headers={"X-API-Key": "wrong"}).status_code == 403
        assert c.get("/sessions", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/metrics").status_code == 401


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKER_MAX_SESSIONS", "7")
    monkeypatch.setenv("TALKER_STUN_URLS", "stun:a.example:3478, stun:b.example:3478")
    s = Settings()
    assert s.max_sessions == 7
    assert s.ice_servers() == [{"urls": ["stun:a.example:3478", "stun:b.example:3478"]}]
    with pytest.raises(ValueError, match="whole samples"):
        Settings(fps=29.97)
    with pytest.raises(ValueError, match="turn_username"):
        Settings(turn_urls=["turn:t.example"])


def test_new_sessions_wait_while_frames_come_late(tmp_path: Path) -> None:
    from server.load import LoadMonitor

    settings = Settings(data_dir=tmp_path, max_sessions=4, job_workers=0, admit_max_late_pct=1.0)
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        state = c.app.state.talker  # type: ignore[attr-defined]
        m = state.metrics
        # the server samples its frame counters every second; a 3 s window keeps the test short
        load = state.manager.load = LoadMonitor(m, settings.admit_max_late_pct, window_s=3.0)
        load.sample()
        m.video_frames.inc(200)  # what the tracks count: 250 frames shown, 10 of them late (4 %)
        m.video_repeated.inc(50)
        m.video_late.inc(10)
        t_end = time.monotonic() + 10
        while load.late_pct() is None and time.monotonic() < t_end:
            time.sleep(0.1)
        r = c.post("/sessions", json={"sdp": make_offer()})
        assert r.status_code == 429 and "4.0 % of its video frames came late" in r.json()["detail"]
        assert r.headers["retry-after"]
        h = c.get("/health").json()
        assert h["accepting_sessions"] is False and h["frames_late_pct"] == 4.0 and h["sessions"] == 0
        assert c.get("/health/accepting").status_code == 503
        # then every frame comes on time: once the late ones are out of the window, sessions open again
        while not c.get("/health").json()["accepting_sessions"] and time.monotonic() < t_end + 10:
            m.video_frames.inc(50)
            time.sleep(0.5)
        r = c.post("/sessions", json={"sdp": make_offer()})
        assert r.status_code == 201, r.text
        assert c.delete(f"/sessions/{r.json()['session_id']}").status_code == 204
