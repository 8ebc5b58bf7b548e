"""Offline render jobs: persisted in SQLite (or PostgreSQL: ``talker.db``) with their files under the data dir.

A job is a row (text, portrait file, settings, status, progress; for a persona, the persona as it was
when the job was queued) plus a folder ``jobs/<id>/`` with its portrait (or the persona's face) and,
once done, ``result.mp4``. Worker threads claim queued jobs one at a time. After a
restart nothing is lost: queued jobs run, and jobs that were running when the process stopped are
queued again until ``job_attempts`` is used up, then marked failed with the reason.
"""

from __future__ import annotations

import builtins
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from server.tenancy import DEFAULT_TENANT
from talker.db import Database
from talker.persona import Persona

log = logging.getLogger("talker.server")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    text TEXT NOT NULL,
    portrait_id TEXT NOT NULL,
    portrait_file TEXT,
    fps DOUBLE PRECISION NOT NULL,
    size INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    progress DOUBLE PRECISION NOT NULL DEFAULT 0,
    stage TEXT NOT NULL DEFAULT 'queued',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    result_file TEXT,
    duration_s DOUBLE PRECISION
)""",
    "CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created_at)",
    # which named server process claimed each job (several processes may share one store)
    "CREATE TABLE IF NOT EXISTS job_claims (job_id TEXT PRIMARY KEY, instance TEXT NOT NULL)",
)

_ADDED_COLUMNS = {"persona_id": "TEXT", "persona": "TEXT", "owner": "TEXT", "kind": "TEXT", "params": "TEXT"}
"""Columns added after the first release (persona renders, tenants), added to older databases on open."""


CANCEL_CHECK_S = 0.5
"""How often a running job looks for a cancel made by another process (PostgreSQL store)."""


class JobCancelled(Exception):
    """Raised inside a running job when it was cancelled."""


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    text: str
    portrait_id: str
    portrait_file: str | None
    fps: float
    size: int
    seed: int
    progress: float
    stage: str
    error: str | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    result_file: str | None
    duration_s: float | None
    persona_id: str | None = None
    persona: str | None = None  # JSON of the persona (``Persona.to_dict``) when queued
    owner: str | None = None  # the tenant that queued it (None: from before tenants, the default tenant's)
    kind: str | None = None  # "render" (None: from before dubs), "dub" or "avatar" (preparing a video avatar)
    params: str | None = None  # JSON of a dub's or avatar's options (files, voice, fit, face index, name)


class JobStore:
    """All job state; thread-safe (one connection behind a lock)."""

    def __init__(
        self, db_path: Path, files_dir: Path, instance: str | None = None, database_url: str | None = None
    ) -> None:
        """``instance``: this server process's name when several share the store (``recover`` then queues
        again only the jobs this one was running); None: the only process. ``database_url``: the rows in
        that PostgreSQL database instead of the SQLite file ``db_path``."""
        self.instance = instance
        self.files_dir = Path(files_dir)
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database.open(db_path, database_url, keep_open=True)
        self._lock = threading.Lock()
        self._work = threading.Condition()
        self._cancelled: set[str] = set()
        self._cancel_checked: dict[str, float] = {}
        with self._lock:
            for statement in _SCHEMA:
                self.db.execute(statement)
            have = self.db.columns("jobs")
            for name, kind in _ADDED_COLUMNS.items():
                if name not in have:
                    maybe = "IF NOT EXISTS " if self.db.postgres else ""  # two processes may open it at once
                    self.db.execute(f"ALTER TABLE jobs ADD COLUMN {maybe}{name} {kind}")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # --------------------------------------------------------------------------- reads
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            rows = self.db.query_dicts("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job(**rows[0]) if rows else None

    def list(self, limit: int = 100, owner: str | None = None, kind: str = "render") -> list[Job]:
        """The newest jobs of a kind ("render", "dub" or "avatar"); only ``owner``'s when given (the default tenant
        also gets jobs with no owner)."""
        where = ["COALESCE(kind, 'render') = ?"]
        args: list[object] = [kind]
        if owner is not None:
            where.append("COALESCE(owner, ?) = ?")
            args += [DEFAULT_TENANT, owner]
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT ?"
        with self._lock:
            rows = self.db.query_dicts(sql, (*args, limit))
        return [Job(**r) for r in rows]

    def active_count(self, owner: str) -> int:
        """Queued and running jobs of one tenant."""
        with self._lock:
            rows = self.db.execute(
                "SELECT COUNT(*) FROM jobs WHERE COALESCE(owner, ?) = ? AND status IN (?, ?)",
                (DEFAULT_TENANT, owner, QUEUED, RUNNING),
            )
        return int(rows[0][0])

    def bytes_of(self, owner: str) -> int:
        """Bytes of one tenant's job files (portraits and results)."""
        total = 0
        for job in [j for kind in ("render", "dub", "avatar") for j in self.list(1_000_000, owner, kind)]:
            d = self.job_dir(job.id)
            if d.is_dir():
                total += sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        return total

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        out = {s: 0 for s in (QUEUED, RUNNING, DONE, FAILED, CANCELLED)}
        out.update({r[0]: r[1] for r in rows})
        return out

    def job_dir(self, job_id: str) -> Path:
        return self.files_dir / job_id

    # --------------------------------------------------------------------------- writes
    def create(
        self,
        text: str,
        portrait_id: str,
        portrait: tuple[bytes, str] | Path | None,
        fps: float,
        size: int,
        seed: int,
        persona: Persona | None = None,
        owner: str = DEFAULT_TENANT,
        avatar: str | None = None,
        avatar_folder: Path | None = None,
    ) -> Job:
        """Queue a job. ``portrait``: (bytes, extension) of an upload, a file to copy, or None (default).
        ``persona``: speak as it (its face file is copied into the job, so deleting it later is safe).
        ``avatar``: the owner's video avatar shows instead (its name and its folder, read when the job runs).
        Nothing is left behind when it fails (no folder, no row)."""
        if persona is not None:
            portrait = Path(persona.face_path)

        def fill(d: Path) -> dict[str, object]:
            pfile: str | None = None
            if isinstance(portrait, tuple):
                data, ext = portrait
                p = d / f"portrait{ext}"
                p.write_bytes(data)
                pfile = str(p)
            elif isinstance(portrait, Path):
                p = d / f"portrait{portrait.suffix}"
                shutil.copyfile(portrait, p)
                pfile = str(p)
            return {
                "portrait_file": pfile,
                "persona_id": persona.id if persona is not None else None,
                "persona": json.dumps(persona.to_dict()) if persona is not None else None,
            }

        row = {"text": text, "portrait_id": portrait_id, "fps": fps, "size": size, "seed": seed, "owner": owner}
        if avatar is not None:
            row["params"] = json.dumps({"avatar": avatar, "folder": str(avatar_folder)})
        return self._queue(row, fill)

    def create_dub(
        self, files: dict[str, Path], text: str, params: dict[str, object], seed: int, owner: str = DEFAULT_TENANT
    ) -> Job:
        """Queue a dub. ``files``: name in the job's folder -> a file to move there (the video, the audio);
        ``params``: the options the runner needs. Nothing is left behind when it fails."""

        def fill(d: Path) -> dict[str, object]:
            for name, src in files.items():
                shutil.move(str(src), d / name)
            return {}

        row = {"text": text, "portrait_id": "video", "fps": 0.0, "size": 0, "seed": seed, "owner": owner}
        return self._queue({**row, "kind": "dub", "params": json.dumps(params)}, fill)

    def create_avatar(
        self, video: Path, name: str, params: dict[str, object], size: int, owner: str = DEFAULT_TENANT
    ) -> Job:
        """Queue the preparation of a video avatar ``name`` from ``video`` (moved into the job's folder);
        the job's ``portrait_id`` is ``avatar:<name>``. Nothing is left behind when it fails."""

        def fill(d: Path) -> dict[str, object]:
            shutil.move(str(video), d / str(params["video"]))
            return {}

        row = {"text": "", "portrait_id": f"avatar:{name}", "fps": 0.0, "size": size, "seed": 0, "owner": owner}
        return self._queue({**row, "kind": "avatar", "params": json.dumps(params)}, fill)

    def avatar_jobs(self, owner: str, name: str | None = None) -> builtins.list[Job]:
        """One tenant's avatar preparations (of one name), newest first."""
        where = "kind = 'avatar' AND COALESCE(owner, ?) = ?"
        args: list[object] = [DEFAULT_TENANT, owner]
        if name is not None:
            where += " AND portrait_id = ?"
            args.append(f"avatar:{name}")
        with self._lock:
            rows = self.db.query_dicts(f"SELECT * FROM jobs WHERE {where} ORDER BY created_at DESC", tuple(args))
        return [Job(**r) for r in rows]

    def _queue(self, row: dict[str, object], fill: Callable[[Path], dict[str, object]]) -> Job:
        """Make a job's folder, let ``fill`` put its files there (and return more columns), insert the row
        queued, and wake a runner. On any failure the folder goes and no row is left."""
        job_id = uuid.uuid4().hex
        d = self.job_dir(job_id)
        d.mkdir(parents=True)
        try:
            cols = {"id": job_id, "status": QUEUED, "created_at": time.time(), **row, **fill(d)}
            names = ", ".join(cols)
            marks = ", ".join("?" for _ in cols)
            with self._lock:
                self.db.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", tuple(cols.values()))
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        with self._work:
            self._work.notify_all()
        job = self.get(job_id)
        assert job is not None
        return job

    delegated: tuple[str, ...] = ()
    """Job kinds another executor runs (``server.ray_jobs``); ``claim_next()`` without ``kinds`` leaves them."""

    def claim_next(self, kinds: Collection[str] | None = None) -> Job | None:
        """Mark the oldest queued job running and return it (atomic across threads). ``kinds``: only jobs of
        these kinds ("render", "dub"...); without it, any kind but the ``delegated`` ones."""
        if kinds is not None and not kinds:
            return None
        where, args = "status = ?", [QUEUED]
        names, op = (kinds, "IN") if kinds is not None else (self.delegated, "NOT IN")
        if kinds is not None or names:
            where += f" AND COALESCE(kind, 'render') {op} ({', '.join('?' for _ in names)})"
            args += list(names)
        with self._lock:
            rows = self.db.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY created_at LIMIT 1", tuple(args))
            if not rows:
                return None
            job_id = rows[0][0]
            _, changed = self.db.execute_count(
                "UPDATE jobs SET status = ?, attempts = attempts + 1, started_at = ?, stage = 'starting', error = NULL"
                " WHERE id = ? AND status = ?",
                (RUNNING, time.time(), job_id, QUEUED),
            )
            if changed != 1:  # pragma: no cover - cancelled, or claimed by another process, in between
                return None
            self.db.execute(
                "INSERT INTO job_claims (job_id, instance) VALUES (?, ?)"
                " ON CONFLICT (job_id) DO UPDATE SET instance = excluded.instance",
                (job_id, self.instance or ""),
            )
        return self.get(job_id)

    def wait_for_work(self, timeout: float) -> None:
        with self._work:
            self._work.wait(timeout)

    def wake_all(self) -> None:
        with self._work:
            self._work.notify_all()

    def set_progress(self, job_id: str, progress: float, stage: str) -> None:
        with self._lock:
            self.db.execute(
                "UPDATE jobs SET progress = ?, stage = ? WHERE id = ? AND status = ?",
                (progress, stage, job_id, RUNNING),
            )

    def finish(self, job_id: str, result: Path, duration_s: float) -> bool:
        self._cancel_checked.pop(job_id, None)
        with self._lock:
            _, changed = self.db.execute_count(
                "UPDATE jobs SET status = ?, progress = 1, stage = 'done', finished_at = ?, result_file = ?,"
                " duration_s = ? WHERE id = ? AND status = ?",
                (DONE, time.time(), str(result), duration_s, job_id, RUNNING),
            )
            return changed == 1

    def fail(self, job_id: str, reason: str) -> None:
        self._cancel_checked.pop(job_id, None)
        with self._lock:
            self.db.execute(
                "UPDATE jobs SET status = ?, stage = 'failed', error = ?, finished_at = ? WHERE id = ? AND status = ?",
                (FAILED, reason, time.time(), job_id, RUNNING),
            )

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job (a running one stops at its next frame). False if not active."""
        with self._lock:
            _, changed = self.db.execute_count(
                "UPDATE jobs SET status = ?, stage = 'cancelled', finished_at = ?, error = 'cancelled by request'"
                " WHERE id = ? AND status IN (?, ?)",
                (CANCELLED, time.time(), job_id, QUEUED, RUNNING),
            )
            if changed == 1:
                self._cancelled.add(job_id)
                return True
            return False

    def is_cancelled(self, job_id: str) -> bool:
        """Cancelled through this store; with PostgreSQL also through another process's (its row, read at
        most every ``CANCEL_CHECK_S`` per job)."""
        if job_id in self._cancelled:
            return True
        if not self.db.postgres:
            return False
        now = time.monotonic()
        if now - self._cancel_checked.get(job_id, -CANCEL_CHECK_S) < CANCEL_CHECK_S:
            return False
        self._cancel_checked[job_id] = now
        rows = self.db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,))
        if rows and rows[0][0] != CANCELLED:
            return False
        self._cancelled.add(job_id)
        self._cancel_checked.pop(job_id, None)
        return True

    def delete(self, job_id: str) -> bool:
        """Remove a finished job and its files."""
        with self._lock:
            _, changed = self.db.execute_count(
                "DELETE FROM jobs WHERE id = ? AND status NOT IN (?, ?)", (job_id, QUEUED, RUNNING)
            )
            deleted = changed == 1
            self.db.execute("DELETE FROM job_claims WHERE job_id = ?", (job_id,))
        if deleted:  # (a cancelled id stays marked: a runner still on the job stops at its next frame)
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return deleted

    def recover(self, max_attempts: int) -> tuple[int, int]:
        """After a restart: jobs left 'running' are queued again, or failed once out of attempts. With an
        ``instance``, only those it claimed (or no other named process did): another's may still be running."""
        with self._lock:
            mine = "" if self.instance is None else " AND id NOT IN (SELECT job_id FROM job_claims WHERE instance != ?)"
            who = () if self.instance is None else (self.instance,)
            requeued = self.db.execute_count(
                "UPDATE jobs SET status = ?, stage = 'queued', progress = 0,"
                " error = 'interrupted by a server restart; retrying' WHERE status = ? AND attempts < ?" + mine,
                (QUEUED, RUNNING, max_attempts, *who),
            )[1]
            failed = self.db.execute_count(
                "UPDATE jobs SET status = ?, stage = 'failed', finished_at = ?,"
                " error = 'interrupted by a server restart ' || attempts || ' time(s); not retried again'"
                " WHERE status = ?" + mine,
                (FAILED, time.time(), RUNNING, *who),
            )[1]
        return requeued, failed

    def requeue(self, job_id: str, reason: str, max_attempts: int, spend: bool = True) -> bool:
        """A running job whose worker was lost: queued again with ``reason`` while it has attempts left (True),
        else failed with it. ``spend=False``: it never started, so its attempt is given back and it is always
        queued again. A job no longer running (cancelled meanwhile) is left as it is (False)."""
        with self._lock:
            _, changed = self.db.execute_count(
                "UPDATE jobs SET status = ?, stage = 'queued', progress = 0, error = CAST(? AS TEXT) || '; retrying',"
                " attempts = attempts - ? WHERE id = ? AND status = ? AND (attempts < ? OR ?)",
                (QUEUED, reason, 0 if spend else 1, job_id, RUNNING, max_attempts, not spend),
            )
            if changed == 1:
                requeued = True
            else:
                self.db.execute(
                    "UPDATE jobs SET status = ?, stage = 'failed', finished_at = ?, error = CAST(? AS TEXT)"
                    " || ' (' || attempts || ' attempt(s)); not retried again' WHERE id = ? AND status = ?",
                    (FAILED, time.time(), reason, job_id, RUNNING),
                )
                requeued = False
        if requeued:
            with self._work:
                self._work.notify_all()
        return requeued
