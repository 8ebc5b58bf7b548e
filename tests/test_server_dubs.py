"""POST /dubs: a video of a face + new speech -> the same video re-synced, as a job like renders."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

import talker
from server.app import create_app
from server.settings import Settings
from server.testing import shared_engine


@pytest.fixture(scope="module")
def talking_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("video") / "talking.mp4"
    talker.render(text="Good morning. We will see.", out=str(out), size=256)
    return out.read_bytes()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        job_workers=1,
        render_processes=False,
        persona_voice_embeddings=False,
        max_sessions=1,
    )
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        yield c


def _wait(client: TestClient, job_id: str, timeout: float = 240.0) -> dict[str, object]:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        job = client.get(f"/dubs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"dub {job_id} did not finish")


def test_a_text_dub_comes_back_as_the_same_video_with_the_new_speech(client: TestClient, talking_video: bytes) -> None:
    r = client.post(
        "/dubs",
        files={"video": ("me.mp4", talking_video, "video/mp4")},
        data={"text": "Papa bought a map, and a bobcat.", "fit": "hold"},
    )
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"])
    assert job["status"] == "done", job
    assert client.get("/renders").json() == [], "dubs are listed apart from renders"
    assert [j["job_id"] for j in client.get("/dubs").json()] == [job["job_id"]]
    got = client.get(f"/dubs/{job['job_id']}/result")
    assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(got.content)) as out, av.open(io.BytesIO(talking_video)) as src:
        vo, vs = out.streams.video[0], src.streams.video[0]
        assert (vo.width, vo.height) == (vs.width, vs.height), "the video's own size"
        assert abs(float(vo.average_rate) - float(vs.average_rate)) < 0.01, "and frame rate"
        assert out.streams.audio, "with the new speech as its sound"
        seconds = float(out.duration or 0) / av.time_base
    assert seconds > 2.0, "hold: the speech, longer than the clip, plays to its end"


def test_bad_dub_requests_say_what_is_wrong(client: TestClient, talking_video: bytes) -> None:
    def post(files: dict[str, tuple[str, bytes, str]], data: dict[str, str]) -> tuple[int, str]:
        r = client.post("/dubs", files=files, data=data)
        return r.status_code, str(r.json().get("detail", ""))

    code, msg = post({"video": ("me.mp4", talking_video, "video/mp4")}, {})
    assert code == 422 and "give the new speech" in msg
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 5) * 8000).astype("<i2").tobytes())
    code, msg = post({"video": ("sound.wav", buf.getvalue(), "audio/wav")}, {"text": "Hello."})
    assert code == 415 and "video" in msg and "/" not in msg.replace("MP4/", ""), msg
    code, msg = post({"video": ("me.mp4", b"not a video at all" * 50, "video/mp4")}, {"text": "Hello."})
    assert code == 415, msg
    code, msg = post({"video": ("me.mp4", b"", "video/mp4")}, {"text": "Hello."})
    assert code == 400 and "empty" in msg
    code, msg = post(
        {"video": ("me.mp4", talking_video, "video/mp4"), "audio": ("a.wav", buf.getvalue(), "audio/wav")},
        {"voice_id": "piper:joe"},
    )
    assert code == 422 and "recording is the voice" in msg
    code, msg = post({"video": ("me.mp4", talking_video, "video/mp4")}, {"text": "Hi.", "fit": "stretch"})
    assert code == 422 and "fit" in msg
    assert client.get("/dubs/nope").status_code == 404
    data_dir = Path(client.app.state.settings.data_dir)  # type: ignore[attr-defined]
    assert not list(data_dir.glob(".upload-*")), "refused uploads leave nothing behind"
