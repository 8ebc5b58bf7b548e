"""One small connection layer for talker's record stores: a SQLite file (the default) or PostgreSQL.

Stores write their SQL once, in the subset both engines accept: ``?`` placeholders (turned into ``%s``
for PostgreSQL), ``INSERT ... ON CONFLICT ... DO NOTHING / DO UPDATE`` for upserts, ``DOUBLE PRECISION``
and ``BIGINT`` columns. ``Database.open(sqlite_path, url)`` picks the engine: PostgreSQL when ``url``
(``postgresql://...``, from ``TALKER_DATABASE_URL``) is given, so several processes on several machines
share one set of records; files (faces, portraits) stay in the shared data folder either way.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ENV_DATABASE_URL = "TALKER_DATABASE_URL"

_URL_RE = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
_PASSWORD_RE = re.compile(r"(://[^/:@]*:)[^@/]*@")


class DatabaseConfigError(ValueError):
    """The database URL cannot be used (says why, with any password left out)."""


def check_url(url: str) -> str:
    """``url`` when it names a PostgreSQL server, else a ``DatabaseConfigError``."""
    if not _URL_RE.match(url.strip()):
        raise DatabaseConfigError(
            f"database URL {redact(url)!r} is not a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DBNAME)"
        )
    return url.strip()


def database_url_from_env() -> str | None:
    """``$TALKER_DATABASE_URL`` when set and not empty (checked), else None: SQLite in the data folder."""
    url = os.environ.get(ENV_DATABASE_URL, "").strip()
    return check_url(url) if url else None


def redact(url: str) -> str:
    """A URL with its password replaced by ``***`` (for messages and logs)."""
    return _PASSWORD_RE.sub(r"\1***@", url)


def to_format_params(sql: str) -> str:
    """``?`` placeholders as ``%s`` (PostgreSQL's driver style); ``?`` inside quoted strings and a literal
    ``%`` are kept as they are meant."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class Database:
    """Runs a store's statements on its engine; thread-safe.

    SQLite: WAL, autocommit; one connection per call, or with ``keep_open`` one connection behind a lock.
    PostgreSQL: one autocommit connection behind a lock, opened again when the server drops it.
    """

    def __init__(self, sqlite_path: Path | None, url: str | None, keep_open: bool = False) -> None:
        self.sqlite_path = sqlite_path
        self._sqlite_conn: sqlite3.Connection | None = None
        self._keep_open = keep_open
        self.url = check_url(url) if url else None
        if self.url is None and sqlite_path is None:
            raise DatabaseConfigError("a store needs a SQLite file or a database URL")
        self._lock = threading.Lock()
        self._pg: Any = None
        self.errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
        if self.url is not None:
            try:
                import psycopg
            except ImportError as e:
                raise DatabaseConfigError(
                    "TALKER_DATABASE_URL needs the PostgreSQL driver: pip install 'talker[postgres]'"
                ) from e
            self.errors = (psycopg.Error,)

    @classmethod
    def open(cls, sqlite_path: Path, url: str | None, keep_open: bool = False) -> Database:
        """PostgreSQL at ``url`` when given, else the SQLite file ``sqlite_path``."""
        return cls(None if url else sqlite_path, url, keep_open)

    @property
    def postgres(self) -> bool:
        return self.url is not None

    @property
    def where(self) -> str:
        """The store's location for messages (a file, or the server without its password)."""
        return redact(self.url) if self.url else str(self.sqlite_path)

    def _pg_conn(self) -> Any:
        import psycopg

        if self._pg is None or self._pg.closed or self._pg.broken:
            try:
                self._pg = psycopg.connect(str(self.url), autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as e:
                raise DatabaseConfigError(f"cannot connect to the database {self.where}: {e}") from e
        return self._pg

    def _sqlite_connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.sqlite_path), timeout=10.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    @contextmanager
    def _sqlite(self) -> Iterator[sqlite3.Connection]:
        if self._keep_open:
            with self._lock:
                if self._sqlite_conn is None:
                    self._sqlite_conn = self._sqlite_connect()
                yield self._sqlite_conn
            return
        db = self._sqlite_connect()
        try:
            yield db
        finally:
            db.close()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders); its rows (none for writes)."""
        return self.execute_count(sql, args)[0]

    def execute_count(self, sql: str, args: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], int]:
        """Run one statement; its rows and how many rows it changed."""
        rows, count, _ = self._run(sql, args)
        return rows, count

    def query_dicts(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a query as column name -> value."""
        rows, _, names = self._run(sql, args)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def columns(self, table: str) -> set[str]:
        """The column names of ``table``."""
        if self.url is None:
            return {r[1] for r in self.execute(f"PRAGMA table_info({table})")}
        sql = (
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?"
        )
        return {r[0] for r in self.execute(sql, (table,))}

    def _run(self, sql: str, args: Sequence[Any]) -> tuple[list[tuple[Any, ...]], int, list[str]]:
        if self.url is None:
            with self._sqlite() as db:
                cur = db.execute(sql, tuple(args))
                names = [d[0] for d in cur.description or ()]
                return cur.fetchall(), cur.rowcount, names
        with self._lock:
            for attempt in (0, 1):
                conn = self._pg_conn()
                try:
                    cur = conn.execute(to_format_params(sql), tuple(args))
                    names = [d.name for d in cur.description or ()]
                    return (cur.fetchall() if cur.description else []), cur.rowcount, names
                except Exception:
                    if attempt == 0 and conn.broken:  # the server closed the connection: reconnect once
                        continue
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def schema_version(self, name: str) -> int:
        """The schema version stored for table ``name`` (SQLite: the file's ``user_version``)."""
        if self.url is None:
            return int(self.execute("PRAGMA user_version")[0][0])
        self.execute("CREATE TABLE IF NOT EXISTS talker_schema (name TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        rows = self.execute("SELECT version FROM talker_schema WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def set_schema_version(self, name: str, version: int) -> None:
        if self.url is None:
            self.execute(f"PRAGMA user_version = {int(version)}")
        else:
            self.execute(
                "INSERT INTO talker_schema (name, version) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                (name, version),
            )

    def close(self) -> None:
        with self._lock:
            if self._sqlite_conn is not None:
                self._sqlite_conn.close()
                self._sqlite_conn = None
            if self._pg is not None:
                self._pg.close()
                self._pg = None
