"""Who is calling: API keys mapped to tenants, what each tenant owns, and per-client rate limits.

Every job, persona, portrait and session belongs to the tenant whose key created it and is visible only
to that tenant (an admin key sees everything). With no key configured the server has one tenant,
``default``, and every caller is its admin: the single-user setup on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from talker.db import Database

DEFAULT_TENANT = "default"
"""Tenant of the single ``api_key``, of no key at all, and of personas made with the CLI."""


@dataclass(frozen=True)
class Principal:
    """The caller of a request: its tenant, and whether it may see and manage every tenant's things."""

    tenant: str
    admin: bool = False

    def may_see(self, owner: str | None) -> bool:
        return self.admin or (owner or DEFAULT_TENANT) == self.tenant


LOCAL_ADMIN = Principal(DEFAULT_TENANT, admin=True)


class KeyFileError(ValueError):
    """The keys file cannot be used (names the file and the entry)."""


@dataclass(frozen=True)
class _Key:
    sha256: bytes
    principal: Principal


class KeyRing:
    """API keys -> principals. Keys are compared by their SHA-256 in constant time."""

    def __init__(self, keys: list[_Key]) -> None:
        self._keys = keys

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @classmethod
    def from_settings(cls, api_key: str | None, keys_file: Path | None) -> KeyRing:
        keys: list[_Key] = []
        if api_key:
            keys.append(_Key(hashlib.sha256(api_key.encode()).digest(), Principal(DEFAULT_TENANT, admin=True)))
        if keys_file is not None:
            keys += _read_keys_file(keys_file)
        return cls(keys)

    def lookup(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).digest()
        found: Principal | None = None
        for k in self._keys:  # every entry is compared, so the time taken says nothing about which matched
            if hmac.compare_digest(digest, k.sha256):
                found = k.principal
        return found


def _read_keys_file(path: Path) -> list[_Key]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise KeyFileError(f"cannot read the API keys file {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise KeyFileError(f"the API keys file {path} is not valid JSON: {e}") from e
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise KeyFileError(f'the API keys file {path} needs the shape {{"keys": [{{"key": ..., "tenant": ...}}]}}')
    out: list[_Key] = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("tenant"), str) or not entry["tenant"].strip():
            raise KeyFileError(f"entry {n} of the API keys file {path} needs a non-empty 'tenant'")
        if isinstance(entry.get("key"), str) and len(entry["key"]) >= 16:
            digest = hashlib.sha256(entry["key"].encode()).digest()
        elif isinstance(entry.get("key_sha256"), str) and len(entry["key_sha256"]) == 64:
            try:
                digest = bytes.fromhex(entry["key_sha256"])
            except ValueError as err:
                raise KeyFileError(f"entry {n} of the API keys file {path}: key_sha256 is not hex") from err
        else:
            raise KeyFileError(
                f"entry {n} of the API keys file {path} needs 'key' (16 characters or more) or 'key_sha256' (64 hex)"
            )
        out.append(_Key(digest, Principal(entry["tenant"].strip(), admin=bool(entry.get("admin", False)))))
    return out


class OwnerStore:
    """Which tenants own which personas and portraits (a portrait's id is its content's hash, so two
    tenants uploading the same image both own it; its file goes when the last owner deletes it).
    These rows are the portraits' records; the files are in the data folder."""

    def __init__(self, db_path: Path, database_url: str | None = None) -> None:
        """Rows in the SQLite file ``db_path``, or in the PostgreSQL database at ``database_url``."""
        self.db = Database.open(db_path, database_url, keep_open=True)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS owners (kind TEXT NOT NULL, id TEXT NOT NULL, tenant TEXT NOT NULL,"
            " bytes BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (kind, id, tenant))"
        )

    def close(self) -> None:
        self.db.close()

    def add(self, kind: str, item_id: str, tenant: str, size_bytes: int = 0) -> None:
        self.db.execute(
            "INSERT INTO owners (kind, id, tenant, bytes) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, id, tenant) DO NOTHING",
            (kind, item_id, tenant, size_bytes),
        )

    def remove(self, kind: str, item_id: str, tenant: str | None = None) -> int:
        """Drop one tenant's ownership (every tenant's with None); returns how many owners remain."""
        if tenant is None:
            self.db.execute("DELETE FROM owners WHERE kind = ? AND id = ?", (kind, item_id))
        else:
            self.db.execute("DELETE FROM owners WHERE kind = ? AND id = ? AND tenant = ?", (kind, item_id, tenant))
        rows = self.db.execute("SELECT COUNT(*) FROM owners WHERE kind = ? AND id = ?", (kind, item_id))
        return int(rows[0][0])

    def owners(self, kind: str, item_id: str) -> set[str]:
        rows = self.db.execute("SELECT tenant FROM owners WHERE kind = ? AND id = ?", (kind, item_id))
        return {r[0] for r in rows}

    def may_see(self, who: Principal, kind: str, item_id: str) -> bool:
        """Whether ``who`` may use an item; an item with no owner row (made with the CLI, or before tenants
        existed) belongs to the default tenant."""
        if who.admin:
            return True
        owners = self.owners(kind, item_id)
        return who.tenant in owners or (not owners and who.tenant == DEFAULT_TENANT)

    def ids(self, kind: str, tenant: str) -> set[str]:
        rows = self.db.execute("SELECT id FROM owners WHERE kind = ? AND tenant = ?", (kind, tenant))
        return {r[0] for r in rows}

    def owned_ids(self, kind: str) -> set[str]:
        rows = self.db.execute("SELECT DISTINCT id FROM owners WHERE kind = ?", (kind,))
        return {r[0] for r in rows}

    def bytes_of(self, tenant: str) -> int:
        rows = self.db.execute("SELECT COALESCE(SUM(bytes), 0) FROM owners WHERE tenant = ?", (tenant,))
        return int(rows[0][0])


class RateLimiter:
    """At most ``per_minute`` events per key in any sliding 60 s window."""

    def __init__(self, per_minute: int, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._events.setdefault(key, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def allow(self, key: str) -> bool:
        """Count one event; False when the key is over its limit (the event is not counted then)."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(key, now)
            if len(q) >= self.per_minute:
                return False
            q.append(now)
            if len(self._events) > 10_000:  # forget keys whose window has passed
                for k in [k for k, v in self._events.items() if not v or now - v[-1] > self.window_s]:
                    del self._events[k]
            return True

    def blocked(self, key: str) -> bool:
        """Whether the key is over its limit now (counts nothing)."""
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.per_minute

    def retry_after(self, key: str) -> int:
        with self._lock:
            q = self._events.get(key)
            if not q:
                return 1
            return max(1, int(self.window_s - (time.monotonic() - q[0])) + 1)
