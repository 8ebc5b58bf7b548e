"""Personas and portraits shared by server processes through PostgreSQL (``TALKER_DATABASE_URL``).

The fast tests check the SQL layer's translation and the settings; the slow test starts a real
PostgreSQL server (Debian ``postgresql``) in a temporary folder and runs two server apps against it.
"""

from __future__ import annotations

import io
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

from server.settings import Settings
from talker.db import Database, DatabaseConfigError, redact, to_format_params
from talker.persona import PersonaStore
from talker.portrait import default_portrait_path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def test_placeholders_become_format_style_outside_quotes() -> None:
    assert to_format_params("SELECT a FROM t WHERE id = ? AND b IN (?, ?)") == (
        "SELECT a FROM t WHERE id = %s AND b IN (%s, %s)"
    )
    # a '?' or '%' inside a string literal is text; a bare '%' (modulo) is escaped for the driver
    assert to_format_params("SELECT 'what?' || ?, 7 % ?, 'x%y'") == "SELECT 'what?' || %s, 7 %% %s, 'x%%y'"


def test_database_urls_are_checked_and_passwords_kept_out_of_messages(tmp_path: Path) -> None:
    assert redact("postgresql://talker:s3cret@db:5432/talker") == "postgresql://talker:***@db:5432/talker"
    with pytest.raises(DatabaseConfigError, match="not a PostgreSQL URL"):
        Database.open(tmp_path / "x.sqlite3", "mysql://u:p@h/db")
    with pytest.raises(ValidationError, match="not a PostgreSQL URL"):
        Settings(data_dir=tmp_path, database_url="sqlite:///x.db")
    assert Settings(data_dir=tmp_path, database_url=" ").database_url is None
    s = Settings(data_dir=tmp_path, database_url="postgresql://u@127.0.0.1:1/db")
    assert s.database_url == "postgresql://u@127.0.0.1:1/db"


def test_sqlite_stays_the_default_store(tmp_path: Path) -> None:
    store = PersonaStore(tmp_path)
    assert not store.db.postgres and (tmp_path / "personas.sqlite3").is_file()
    from server.tenancy import OwnerStore

    owners = OwnerStore(tmp_path / "owners.sqlite3")
    owners.add("portrait", "abc", "alice", 10)
    owners.add("portrait", "abc", "alice", 10)  # the second is ignored, not an error or a double count
    assert owners.owners("portrait", "abc") == {"alice"} and owners.bytes_of("alice") == 10
    assert owners.remove("portrait", "abc", "alice") == 0


def test_an_unreachable_database_says_where(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        DatabaseConfigError, match=rf"cannot connect to the database postgresql://u:\*\*\*@127.0.0.1:{port}"
    ):
        PersonaStore(tmp_path, f"postgresql://u:hidden@127.0.0.1:{port}/db")


# --- a real PostgreSQL server ---------------------------------------------------------------------


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run as the ``postgres`` system user when we are root (the server refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN} (Debian package postgresql)")
    root = Path(tempfile.mkdtemp(prefix="talker-pg-"))  # under /tmp: reachable by the postgres user
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(
        _as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "talker", "--auth=trust", "-E", "UTF8", "--no-sync"]
        ),
        check=True,
        capture_output=True,
        env=env,
    )
    opts = f"-p {port} -h 127.0.0.1 -k {root} -F"
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        yield f"postgresql://talker@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            env=env,
        )
        shutil.rmtree(root, ignore_errors=True)


KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-0123456789ab"}


def _app(data: Path, url: str, name: str, job_workers: int) -> TestClient:
    from server.app import create_app
    from server.testing import shared_engine

    keys = data.parent / "keys.json"
    settings = Settings(
        data_dir=data,
        database_url=url,
        instance=name,
        api_keys_file=keys,
        job_workers=job_workers,
        max_sessions=1,
        size=128,
        render_processes=False,
        persona_voice_embeddings=False,
        max_upload_bytes=2_000_000,
    )
    return TestClient(create_app(settings, engine=shared_engine()))


@pytest.mark.slow
def test_two_server_processes_share_personas_and_portraits(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    from talker.cli import main as cli_main

    shared = tmp_path / "shared"  # the data folder every process mounts at the same path
    shared.mkdir()
    (tmp_path / "keys.json").write_text(
        json.dumps({"keys": [{"key": k, "tenant": t} for t, k in KEYS.items()]}), encoding="utf-8"
    )
    alice, bob = {"X-API-Key": KEYS["alice"]}, {"X-API-Key": KEYS["bob"]}
    photo = Path(default_portrait_path()).read_bytes()
    with _app(shared, pg_url, "api1", 0) as one, _app(shared, pg_url, "api2", 1) as two:
        # a persona made through one process is listed, shown and spoken through the other
        r = one.post(
            "/personas",
            data={"description": "a calm astronaut"},
            files={"image": ("a.png", photo, "image/png")},
            headers=alice,
        )
        assert r.status_code == 201, r.text
        pid = r.json()["persona_id"]
        assert [p["persona_id"] for p in two.get("/personas", headers=alice).json()] == [pid]
        assert two.get("/personas", headers=bob).json() == []  # its owner row is shared too
        assert two.get(f"/personas/{pid}", headers=alice).json()["name"] == r.json()["name"]
        face = two.get(f"/personas/{pid}/face", headers=alice)
        assert face.status_code == 200 and Image.open(io.BytesIO(face.content)).size[0] > 100
        monkeypatch.setenv("TALKER_DATABASE_URL", pg_url)  # `talker persona` reads the same records
        capsys.readouterr()
        assert cli_main(["persona", "--data-dir", str(shared), "list", "--json"]) == 0
        assert [p["id"] for p in json.loads(capsys.readouterr().out)] == [pid]

        # a portrait uploaded to one process renders through the other, for its owner only
        r = one.post("/portraits", files={"file": ("me.png", photo, "image/png")}, headers=alice)
        assert r.status_code == 201, r.text
        portrait = r.json()["portrait_id"]
        assert portrait in [p["portrait_id"] for p in two.get("/portraits", headers=alice).json()]
        assert portrait not in [p["portrait_id"] for p in two.get("/portraits", headers=bob).json()]
        assert two.post("/renders", data={"text": "Hi.", "portrait_id": portrait}, headers=bob).status_code == 404

        jobs = [
            two.post("/renders", data={"text": "Hello there.", "persona_id": pid}, headers=alice).json(),
            two.post("/renders", data={"text": "Hello.", "portrait_id": portrait}, headers=alice).json(),
        ]
        t_end = time.monotonic() + 120
        for job in jobs:
            assert "job_id" in job, job
            while job["status"] in ("queued", "running") and time.monotonic() < t_end:
                time.sleep(0.3)
                job = two.get(f"/renders/{job['job_id']}", headers=alice).json()
            assert job["status"] == "done", job
            mp4 = two.get(f"/renders/{job['job_id']}/result", headers=alice)
            assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp"
            assert one.get(f"/renders/{job['job_id']}/result", headers=alice).content == mp4.content

        # the records live in the database, not in SQLite files of the shared folder
        assert not [p.name for p in shared.glob("*.sqlite3")]
        with psycopg.connect(pg_url) as db:
            assert db.execute("SELECT name FROM personas WHERE id = %s", (pid,)).fetchone() is not None
            owned = db.execute("SELECT tenant FROM owners WHERE kind = 'portrait' AND id = %s", (portrait,)).fetchall()
            assert owned == [("alice",)]

        # deleted through one process: gone in the other
        assert two.delete(f"/personas/{pid}", headers=alice).status_code == 204
        assert one.get(f"/personas/{pid}", headers=alice).status_code == 404
        assert one.get(f"/personas/{pid}/face", headers=alice).status_code == 404
        assert one.get("/personas", headers=alice).json() == []
        assert two.delete(f"/portraits/{portrait}", headers=alice).status_code == 204
        assert portrait not in [p["portrait_id"] for p in one.get("/portraits", headers=alice).json()]
        assert one.post("/renders", data={"text": "Hi.", "portrait_id": portrait}, headers=alice).status_code == 404

    # the CLI's store reads the same database (and the same folder)
    store = PersonaStore(shared, pg_url)
    try:
        assert store.list() == []
    finally:
        store.close()


@pytest.mark.slow
def test_two_processes_share_one_job_queue(pg_url: str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from server.jobs import CANCELLED, QUEUED, RUNNING, JobStore

    files = tmp_path / "jobs"
    a, b = (
        JobStore(tmp_path / "a.sqlite3", files, "api1", pg_url),
        JobStore(tmp_path / "b.sqlite3", files, "api2", pg_url),
    )
    for job in a.list(1000) + a.list(1000, kind="dub"):  # the module's database is shared with the app test
        a.cancel(job.id)
        a.delete(job.id)
    made = [a.create("Hi.", "default", None, 25.0, 128, s, owner="alice") for s in range(8)]
    assert b.get(made[0].id) == made[0] and b.active_count("alice") == 8

    # both processes claim at once: every job exactly once
    def claim_all(store: JobStore) -> list[str]:
        got = []
        while (job := store.claim_next()) is not None:
            got.append(job.id)
        return got

    with ThreadPoolExecutor(2) as pool:
        mine, theirs = pool.map(claim_all, (a, b))
    assert sorted(mine + theirs) == sorted(j.id for j in made) and not set(mine) & set(theirs)

    job = made[0].id
    owner, other = (a, b) if job in mine else (b, a)
    owner.set_progress(job, 0.5, "rendering")
    assert other.get(job).progress == 0.5  # type: ignore[union-attr]
    assert owner.requeue(job, "its worker was lost", 5) is True
    assert other.get(job).error == "its worker was lost; retrying"  # type: ignore[union-attr]
    runner = a if made[1].id in mine else b
    assert not runner.is_cancelled(made[1].id)
    assert (b if runner is a else a).cancel(made[1].id)  # cancelled through the process not running it
    time.sleep(0.6)  # a running job looks for a cancel from another process every 0.5 s
    assert runner.is_cancelled(made[1].id) and owner.get(made[1].id).status == CANCELLED  # type: ignore[union-attr]

    # api2 restarts: it queues again only what it was running
    b.close()
    b = JobStore(tmp_path / "b.sqlite3", files, "api2", pg_url)
    running_b = [j for j in theirs if j not in (job, made[1].id)]
    assert b.recover(2) == (len(running_b), 0)
    for j in running_b:
        assert a.get(j).status == QUEUED  # type: ignore[union-attr]
    for j in mine:
        if j not in (job, made[1].id):
            assert b.get(j).status == RUNNING  # type: ignore[union-attr]
    assert a.delete(made[1].id) and b.get(made[1].id) is None and not (files / made[1].id).exists()
    assert not (tmp_path / "a.sqlite3").exists() and not (tmp_path / "b.sqlite3").exists()
    a.close()
    b.close()
