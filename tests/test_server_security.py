"""The server as an attacker or a careless client would use it: secrets, outbound requests, tenants,
session slots, concurrent failures, odd text and images, cross-site forms, startup mistakes."""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_server_http import make_offer, png

from audio.text import TextError, check_script, clean_text
from server.app import ExposureError, check_exposure, create_app
from server.settings import Settings
from server.testing import shared_engine
from talker.chat import ChatClient, ChatError, ChatSettings
from talker.cli import main as cli_main
from talker.portrait import default_portrait_path, pil_to_rgb

KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-0123456789ab", "ops": "ops-key-0123456789ab"}


class Recorder(http.server.ThreadingHTTPServer):
    """A loopback HTTP server that records every request (path, headers) and answers as told."""

    def __init__(self, status: int = 200, body: bytes = b"", location: str | None = None) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.status, self.body, self.location = status, body, location
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                outer.seen.append((self.path, dict(self.headers)))
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("data")
    keys = data / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"key": KEYS["alice"], "tenant": "alice"},
                    {"key": KEYS["bob"], "tenant": "bob"},
                    {"key": KEYS["ops"], "tenant": "ops", "admin": True},
                ]
            }
        )
    )
    settings = Settings(
        data_dir=data,
        api_keys_file=keys,
        job_workers=0,
        max_sessions=4,
        render_processes=False,
        persona_voice_embeddings=False,
        max_upload_bytes=2_000_000,
    )
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        yield c


def as_(who: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[who]}


# 1, 2: secrets and outbound requests ------------------------------------------------------------------


def test_a_client_cannot_name_a_server_secret_or_an_unlisted_endpoint(
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKER_TEST_SECRET", "do-not-send-me")
    with Recorder() as attacker:
        for data in (
            {"description": "x", "chat_base_url": attacker.url + "/v1", "chat_api_key_env": "TALKER_TEST_SECRET"},
            {"description": "x", "chat_base_url": attacker.url + "/v1"},
            {"description": "x", "chat_api_key_env": "TALKER_TEST_SECRET"},
            {"description": "x", "chat_base_url": "http://169.254.169.254/latest/v1"},
            {"description": "x", "chat_base_url": "http://user:pw@127.0.0.1:9/v1"},
        ):
            r = app_client.post("/personas", data=data, headers=as_("alice"))
            assert r.status_code == 422, (data, r.text)
            assert "do-not-send-me" not in r.text
        assert attacker.seen == [], "the server never contacted the named address"


def test_the_chat_client_follows_no_redirect_and_keeps_the_reply_text_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TALKER_TEST_SECRET", "do-not-send-me")
    with Recorder() as elsewhere, Recorder(status=307, location="") as listed:
        listed.location = elsewhere.url + "/steal"
        client = ChatClient(ChatSettings(base_url=listed.url + "/v1", api_key_env="TALKER_TEST_SECRET", timeout_s=5))
        with pytest.raises(ChatError) as e:
            client.complete("hi")
        assert "redirect" in e.value.public
        assert len(listed.seen) == 1 and listed.seen[0][1].get("Authorization") == "Bearer do-not-send-me"
        assert elsewhere.seen == [], "the key went to the listed endpoint only"
    with Recorder(status=404, body=b'{"error": {"message": "db password is hunter2"}}') as chatty:
        client = ChatClient(ChatSettings(base_url=chatty.url + "/v1", api_key_env=None, timeout_s=5))
        with pytest.raises(ChatError) as e:
            client.complete("hi")
        assert e.value.public == "the chat endpoint answered HTTP 404"
        assert "hunter2" in str(e.value), "the full reason stays in the server log"
    client = ChatClient(ChatSettings(base_url="http://127.0.0.1:9/v1", api_key_env=None, timeout_s=5))
    with pytest.raises(ChatError) as e:
        client.complete("hi")
    assert e.value.public == "the chat endpoint could not be reached" and "127.0.0.1" not in e.value.public


# 3: tenants -------------------------------------------------------------------------------------------


def test_tenants_see_only_their_own_things(app_client: TestClient) -> None:
    c = app_client
    photo = Path(default_portrait_path()).read_bytes()
    r = c.post("/portraits", files={"file": ("me.png", photo, "image/png")}, headers=as_("alice"))
    assert r.status_code == 201, r.text
    pid = r.json()["portrait_id"]
    r = c.post("/personas", data={"description": "a calm astronaut", "voice_id": "piper:joe"}, headers=as_("alice"))
    assert r.status_code == 201, r.text
    persona = r.json()["persona_id"]
    r = c.post("/renders", data={"text": "Hello.", "portrait_id": pid}, headers=as_("alice"))
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    offer = make_offer()
    r = c.post("/sessions", json={"sdp": offer, "portrait_id": pid}, headers=as_("alice"))
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]

    # bob sees none of it, cannot use it, and cannot tell it exists
    assert [p["portrait_id"] for p in c.get("/portraits", headers=as_("bob")).json()] == ["default"]
    assert c.get("/personas", headers=as_("bob")).json() == []
    assert c.get("/renders", headers=as_("bob")).json() == []
    assert c.get("/sessions", headers=as_("bob")).json() == []
    for method, path in [
        ("get", f"/renders/{job}"),
        ("get", f"/renders/{job}/result"),
        ("delete", f"/renders/{job}"),
        ("get", f"/personas/{persona}"),
        ("get", f"/personas/{persona}/face"),
        ("delete", f"/personas/{persona}"),
        ("delete", f"/portraits/{pid}"),
        ("get", f"/sessions/{sid}"),
        ("post", f"/sessions/{sid}/interrupt"),
        ("delete", f"/sessions/{sid}"),
    ]:
        assert getattr(c, method)(path, headers=as_("bob")).status_code == 404, (method, path)
    assert c.post(f"/sessions/{sid}/say", json={"text": "hi"}, headers=as_("bob")).status_code == 404
    assert c.post("/renders", data={"text": "Hi.", "portrait_id": pid}, headers=as_("bob")).status_code == 404
    assert c.post("/renders", data={"text": "Hi.", "persona_id": persona}, headers=as_("bob")).status_code == 404
    r = c.post("/sessions", json={"sdp": make_offer(), "persona_id": persona}, headers=as_("bob"))
    assert r.status_code == 404
    assert c.get("/metrics", headers=as_("bob")).status_code == 403, "metrics are the operator's"

    # alice sees hers; the operator sees everything
    assert [j["job_id"] for j in c.get("/renders", headers=as_("alice")).json()] == [job]
    assert [s["session_id"] for s in c.get("/sessions", headers=as_("alice")).json()] == [sid]
    assert {p["persona_id"] for p in c.get("/personas", headers=as_("ops")).json()} >= {persona}
    assert c.get(f"/renders/{job}", headers=as_("ops")).status_code == 200
    assert c.get("/metrics", headers=as_("ops")).status_code == 200

    # the same picture uploaded by bob is his too; alice deleting hers leaves bob's
    r = c.post("/portraits", files={"file": ("same.png", photo, "image/png")}, headers=as_("bob"))
    assert r.status_code == 201 and r.json()["portrait_id"] == pid
    assert c.delete(f"/portraits/{pid}", headers=as_("alice")).status_code == 204
    assert pid in [p["portrait_id"] for p in c.get("/portraits", headers=as_("bob")).json()]
    assert pid not in [p["portrait_id"] for p in c.get("/portraits", headers=as_("alice")).json()]
    assert c.delete(f"/sessions/{sid}", headers=as_("alice")).status_code == 204
    assert c.delete(f"/renders/{job}", headers=as_("alice")).status_code == 200


def test_wrong_keys_from_one_address_are_throttled(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key="right-key", auth_failures_per_min=3, job_workers=0)
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        for _ in range(3):
            assert c.get("/renders", headers={"X-API-Key": "guess"}).status_code == 403
        r = c.get("/renders", headers={"X-API-Key": "right-key"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


# 4: session slots -------------------------------------------------------------------------------------


def test_offers_that_never_connect_do_not_lock_others_out(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, max_sessions=1, offer_grace_s=0.3, job_workers=0, render_processes=False
    )
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        first = c.post("/sessions", json={"sdp": make_offer()})
        assert first.status_code == 201
        time.sleep(0.4)
        second = c.post("/sessions", json={"sdp": make_offer()})
        assert second.status_code == 201, "an unconnected session gives its slot to a new offer"
        gone = c.get(f"/sessions/{first.json()['session_id']}")
        assert gone.status_code == 404 and "did not connect" in gone.json()["detail"]
        c.delete(f"/sessions/{second.json()['session_id']}")

    settings = Settings(
        data_dir=tmp_path,
        max_sessions=8,
        pending_per_client=2,
        session_rate_per_min=3,
        job_workers=0,
        render_processes=False,
    )
    with TestClient(create_app(settings, engine=shared_engine())) as c:
        ids = [c.post("/sessions", json={"sdp": make_offer()}).json()["session_id"] for _ in range(2)]
        r = c.post("/sessions", json={"sdp": make_offer()})
        assert r.status_code == 429 and "waiting for their peer" in r.json()["detail"]
        for sid in ids:
            c.delete(f"/sessions/{sid}")
        r = c.post("/sessions", json={"sdp": make_offer()})
        assert r.status_code == 429 and "a minute" in r.json()["detail"], "the 4th offer in a minute"


# 6: concurrent failures and odd numbers ---------------------------------------------------------------


def test_concurrent_uploads_of_one_faceless_image_all_fail_cleanly(app_client: TestClient) -> None:
    grey = png(200, 200)

    def up(_: int) -> int:
        r = app_client.post("/portraits", files={"file": ("g.png", grey, "image/png")}, headers=as_("alice"))
        return r.status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(up, range(12)))
    assert codes == [422] * 12
    photo = Path(default_portrait_path()).read_bytes()

    def good(_: int) -> int:
        r = app_client.post("/portraits", files={"file": ("p.png", photo, "image/png")}, headers=as_("alice"))
        return r.status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(good, range(6))) == [201] * 6


def test_a_huge_seed_is_a_clear_422_and_leaves_nothing(app_client: TestClient) -> None:
    jobs_dir = Path(app_client.app.state.settings.data_dir) / "jobs"  # type: ignore[attr-defined]
    before = set(jobs_dir.iterdir())
    r = app_client.post("/renders", data={"text": "Hi.", "seed": str(2**63)}, headers=as_("alice"))
    assert r.status_code == 422 and "seed" in r.text
    assert set(jobs_dir.iterdir()) == before
    assert app_client.get("/health").status_code == 200


# 8: text and images that used to come out wrong --------------------------------------------------------


def test_markup_and_unreadable_scripts_are_refused_with_the_fix() -> None:
    with pytest.raises(TextError, match="SSML"):
        clean_text('<speak>Hello <break time="1s"/> there</speak>')
    assert clean_text("if a < b and c > d") == "if a < b and c > d"
    with pytest.raises(TextError, match="espeak:cmn"):
        check_script("你好，世界", "en-us", "piper:joe")
    with pytest.raises(TextError, match="espeak:ar"):
        check_script("مرحبا بالعالم", "en-us", "piper:joe")
    check_script("你好，世界", "cmn", "espeak:cmn")
    check_script("Hello, Zoë", "en-us", "piper:joe")


def test_a_chinese_voice_speaks_chinese_and_english_piper_refuses_it(app_client: TestClient) -> None:
    from audio.espeak_tts import EspeakTTS

    speech = EspeakTTS("cmn").synthesize("你好，世界。")
    assert speech.duration_s > 0.5 and len([p for p in speech.phones if p.symbol != "SIL"]) >= 6
    r = app_client.post("/renders", data={"text": "<speak>Hi</speak>"}, headers=as_("alice"))
    assert r.status_code == 422 and "SSML" in r.json()["detail"]


def test_a_16_bit_greyscale_portrait_decodes_to_its_tones() -> None:
    rgb = np.asarray(Image.open(default_portrait_path()).convert("L"), dtype=np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert im.mode.startswith("I;16")
        out = pil_to_rgb(im)
    ref = np.asarray(Image.open(default_portrait_path()).convert("L"))
    assert out.shape == (*ref.shape, 3) and np.abs(out[:, :, 0].astype(int) - ref).max() <= 1


def test_a_16_bit_greyscale_upload_finds_its_face(app_client: TestClient) -> None:
    grey = np.asarray(Image.open(default_portrait_path()).convert("L"), dtype=np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG")
    r = app_client.post("/portraits", files={"file": ("g16.png", buf.getvalue(), "image/png")}, headers=as_("bob"))
    assert r.status_code == 201, r.text


# 9: smaller leaks and mistakes ------------------------------------------------------------------------


def test_a_voice_path_reveals_nothing_about_server_files(app_client: TestClient) -> None:
    answers = []
    for path in ("/etc/passwd", "/etc/no-such-file"):
        r = app_client.post("/personas", data={"description": "x", "voice_id": f"piper:{path}"}, headers=as_("bob"))
        answers.append((r.status_code, r.json()["detail"].replace(path, "PATH")))
    assert answers[0] == answers[1] and answers[0][0] == 422


def test_cross_site_form_posts_are_refused(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, job_workers=0), engine=shared_engine())) as c:
        r = c.post("/renders", data={"text": "Hi."}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-site" in r.json()["detail"]
        r = c.post("/renders", data={"text": "Hi."}, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        r = c.post("/renders", data={"text": "Hi."}, headers={"Origin": "http://testserver"})
        assert r.status_code == 202, "the server's own page may post"
        assert c.get("/health", headers={"Origin": "http://evil.example"}).status_code == 200


def test_serving_beyond_loopback_without_a_key_needs_consent(tmp_path: Path) -> None:
    with pytest.raises(ExposureError, match="TALKER_API_KEY"):
        check_exposure("0.0.0.0", Settings(data_dir=tmp_path))
    check_exposure("127.0.0.1", Settings(data_dir=tmp_path))
    check_exposure("::1", Settings(data_dir=tmp_path))
    check_exposure("0.0.0.0", Settings(data_dir=tmp_path, api_key="k"))
    check_exposure("0.0.0.0", Settings(data_dir=tmp_path, allow_no_auth=True))


def test_serve_mistakes_are_one_line_errors(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main(["serve", "--port", "70000"])
    assert e.value.code == 2 and "outside 1-65535" in capfd.readouterr().err
    assert cli_main(["serve", "--data-dir", "/proc/talker-x"]) == 2
    err = capfd.readouterr().err
    assert "/proc/talker-x" in err and "Traceback" not in err
    assert cli_main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    assert "without an API key" in capfd.readouterr().err
    bad = tmp_path / "keys.json"
    bad.write_text('{"keys": [{"key": "short", "tenant": "a"}]}')
    assert cli_main(["serve", "--api-keys-file", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "16 characters" in capfd.readouterr().err


def test_cli_mistakes_name_the_value(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli_main(["render", "--text", "Hi", "--out", str(tmp_path), "--quiet"]) == 2
    assert "is a folder" in capfd.readouterr().err
    assert cli_main(["render", "--text", "Hi", "--out", "/proc/no/x.mp4", "--quiet"]) == 2
    assert "cannot write --out /proc/no/x.mp4" in capfd.readouterr().err
    assert cli_main(["render", "--text", "Hi", "--fps", "nan", "--out", str(tmp_path / "a.mp4")]) == 2
    assert "--fps must be between 1 and 60, got nan" in capfd.readouterr().err
    store = ["--data-dir", str(tmp_path / "personas")]
    for extra, words in ((["--rate", "0"], "rate must be within"), (["--voice", "nope"], "'nope'")):
        assert cli_main(["persona", *store, "create", "-d", "a calm man", "--keywords", *extra]) == 2
        assert words in capfd.readouterr().err
    assert not list((tmp_path / "personas").glob("persona_faces/*.png")), "nothing was saved"


def test_a_very_large_portrait_is_kept_at_a_working_size(app_client: TestClient) -> None:
    from server.portraits import WORKING_MAX_PIXELS

    big = Image.open(default_portrait_path()).convert("RGB").resize((5600, 5600), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=85)
    r = app_client.post("/portraits", files={"file": ("big.jpg", buf.getvalue(), "image/jpeg")}, headers=as_("bob"))
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (5600, 5600), "the upload's own size is reported"
    store = app_client.app.state.talker.portraits  # type: ignore[attr-defined]
    kept = store.path(r.json()["portrait_id"])
    with Image.open(kept) as im:
        assert im.size[0] * im.size[1] <= WORKING_MAX_PIXELS


def test_an_oversized_chunked_upload_is_413(app_client: TestClient) -> None:
    boundary = "xx"

    def body() -> Iterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'.encode()
        for _ in range(40):
            yield bytes(65536)  # 2.6 MB in pieces, no Content-Length: over the 2 MB limit
        yield f"\r\n--{boundary}--\r\n".encode()

    r = app_client.post(
        "/portraits",
        content=body(),
        headers={**as_("alice"), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413 and "limited to 2000000 bytes" in r.json()["detail"]
