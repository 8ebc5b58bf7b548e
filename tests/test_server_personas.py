"""Personas over HTTP: the same SQLite store as ``talker persona``, bad requests with their reasons,
renders and sessions that take a persona."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from server.app import create_app
from server.egress import EndpointRefused, chat_settings_for
from server.settings import Settings
from server.testing import shared_engine
from talker.chat import ChatSettings
from talker.persona import Persona, PersonaStore
from talker.portrait import default_portrait_path

FIVE_POINTS = "70,80;130,80;100,110;80,140;120,140"  # right eye, left eye, nose tip, mouth corners (200x200)


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=data_dir,
        max_sessions=1,
        job_workers=1,
        size=256,
        max_upload_bytes=1_000_000,
        max_image_pixels=600 * 600,
        persona_voice_embeddings=False,
        render_processes=False,
        chat_endpoints={"http://127.0.0.1:9/v1": ""},
    )
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        yield c


def test_persona_crud_with_the_cli_store(client: TestClient, data_dir: Path) -> None:
    r = client.post("/personas", data={"description": "a cheerful old sea captain"})
    assert r.status_code == 201, r.text
    cap = r.json()
    assert cap["name"] == "Cheerful Old Sea Captain"
    assert cap["face_source"].startswith("bundled:") and cap["face_points"] is None
    assert cap["voice_ranking"] and cap["voice_ranking"][0]["voice_id"] == cap["voice_id"]
    assert cap["expression"] == "happy" and cap["idle"] in ("calm", "lively")
    assert cap["chat"]["system_prompt"].startswith("You are Cheerful Old Sea Captain")
    pid = cap["persona_id"]

    face = client.get(f"/personas/{pid}/face")
    assert face.status_code == 200 and face.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(face.content)).size[0] > 100

    photo = Path(default_portrait_path()).read_bytes()
    r = client.post(
        "/personas",
        data={"description": "a calm astronaut", "chat_base_url": "http://127.0.0.1:9/v1", "chat_model": "m"},
        files={"image": ("eileen.png", photo, "image/png")},
    )
    assert r.status_code == 201, r.text
    astro = r.json()
    assert astro["face_source"] == "image" and astro["chat"]["base_url"] == "http://127.0.0.1:9/v1"

    r = client.post("/personas", files={"image": ("mona_lisa.png", photo, "image/png")})  # image alone
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "Mona Lisa" and r.json()["description"] == ""

    listed = [p["persona_id"] for p in client.get("/personas").json()]
    assert listed == [pid, astro["persona_id"], r.json()["persona_id"]]
    got = client.get(f"/personas/{pid}").json()
    assert got["voice_id"] == cap["voice_id"] and "voice_ranking" not in got

    # the CLI's store sees the same personas
    store = PersonaStore(data_dir)
    assert [p.id for p in store.list()] == listed
    assert store.get(astro["persona_id"]).chat.model == "m"

    assert client.delete(f"/personas/{pid}").status_code == 204
    assert client.delete(f"/personas/{pid}").status_code == 404
    r = client.get(f"/personas/{pid}")
    assert r.status_code == 404 and pid in r.json()["detail"]
    assert client.get(f"/personas/{pid}/face").status_code == 404


def test_bad_persona_requests_say_what_is_wrong(client: TestClient) -> None:
    def create(data: dict[str, str], image: bytes | None = None, name: str = "x.png") -> tuple[int, str]:
        files = {"image": (name, image, "image/png")} if image is not None else None
        r = client.post("/personas", data=data, files=files)
        return r.status_code, r.json()["detail"] if r.status_code >= 400 else ""

    code, msg = create({})
    assert code == 422 and "description, an image, or both" in msg
    code, msg = create({"description": "a grey square"}, png(200, 200))
    assert code == 422 and "no face found" in msg and "'points'" in msg and "right eye" in msg
    code, msg = create({"description": "x", "points": "1,2;3"}, png(200, 200))
    assert code == 422 and "point" in msg
    code, msg = create({"description": "x", "points": FIVE_POINTS})
    assert code == 422 and "upload the image too" in msg
    code, msg = create({"description": "x", "expression": "smug"})
    assert code == 422 and "unknown expression 'smug'" in msg
    code, msg = create({"description": "x", "voice_id": "nosuch:voice"})
    assert code == 422 and "nosuch:voice" in msg
    code, msg = create({"description": "x", "chat_base_url": "ftp://example"})
    assert code == 422 and "not an http(s) URL" in msg
    code, msg = create({"description": "x"}, b"GIF89a not really" * 10)
    assert code == 415 and "not a readable image" in msg
    code, msg = create({"description": "x"}, png(700, 700))
    assert code == 422 and "the limit is 360000 pixels" in msg
    code, msg = create({"description": "x"}, b"\x89PNG" + bytes(1_030_000))
    assert code == 413
    code, msg = create({"description": "x" * 2001})
    assert code == 422

    # a face the detector cannot find, located by five guide points instead
    code, _ = create({"description": "a grey square", "points": FIVE_POINTS}, png(200, 200))
    assert code == 201
    made = client.get("/personas").json()[-1]
    assert made["face_points"] == [[70.0, 80.0], [130.0, 80.0], [100.0, 110.0], [80.0, 140.0], [120.0, 140.0]]
    assert client.delete(f"/personas/{made['persona_id']}").status_code == 204


def test_render_job_as_a_persona(client: TestClient) -> None:
    pid = client.post("/personas", data={"description": "a serene woman, Renaissance painting"}).json()["persona_id"]
    assert client.post("/renders", data={"text": "Hi.", "persona_id": "nosuch"}).status_code == 404
    r = client.post("/renders", data={"text": "Hello there.", "persona_id": pid})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["persona_id"] == pid and job["portrait_id"] == f"persona:{pid}"
    client.delete(f"/personas/{pid}")  # the job keeps its own copy of the face
    t_end = time.monotonic() + 60
    while job["status"] in ("queued", "running") and time.monotonic() < t_end:
        time.sleep(0.2)
        job = client.get(f"/renders/{job['job_id']}").json()
    assert job["status"] == "done", job
    mp4 = client.get(f"/renders/{job['job_id']}/result")
    assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp"
    assert 1.0 < job["duration_s"] < 4.0


def test_openapi_shows_personas(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/personas", "/personas/{persona_id}", "/personas/{persona_id}/face", "/sessions/{session_id}/chat"} <= set(
        spec["paths"]
    )
    assert "persona_id" in spec["components"]["schemas"]["Offer"]["properties"]
    assert set(spec["paths"]["/personas/{persona_id}"]) == {"get", "delete"}


def test_session_chat_endpoint_choice() -> None:
    s = Settings(data_dir=Path("unused"))
    p = Persona(id="p", name="P", description="", voice_id="piper:joe", chat=ChatSettings(system_prompt="Be brief."))
    assert chat_settings_for(None, s) is None
    assert chat_settings_for(p, s) is None, "the library's default endpoint is not a configured one"
    d = Settings(data_dir=Path("unused"), chat_base_url="http://127.0.0.1:1/v1", chat_model="m")
    got = chat_settings_for(p, d)
    assert got is not None and got.base_url == "http://127.0.0.1:1/v1" and got.system_prompt == "Be brief."
    own = Persona(
        id="q", name="Q", description="", voice_id="piper:joe", chat=ChatSettings(base_url="http://h/v1/", model="x")
    )
    with pytest.raises(EndpointRefused):
        chat_settings_for(own, d)  # an endpoint the operator did not list
    listed = Settings(data_dir=Path("unused"), chat_endpoints={"http://H:80/v1": "LISTED_KEY"})
    got = chat_settings_for(own, listed)
    assert got is not None and got.base_url == "http://h/v1" and got.model == "x"
    assert got.api_key_env == "LISTED_KEY", "the key is the one bound to the URL, whatever the persona names"


def test_a_jobs_database_from_before_personas_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    from server.jobs import _SCHEMA, JobStore

    db = tmp_path / "jobs.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(";\n".join(_SCHEMA))
    conn.execute(
        "INSERT INTO jobs (id, status, text, portrait_id, fps, size, seed, created_at)"
        " VALUES ('old', 'done', 'Hi.', 'default', 25, 512, 0, 1.0)"
    )
    conn.commit()
    conn.close()
    store = JobStore(db, tmp_path / "jobs")
    old = store.get("old")
    assert old is not None and old.persona_id is None and old.persona is None
    store.close()
    JobStore(db, tmp_path / "jobs").close()  # opening it again adds nothing twice
