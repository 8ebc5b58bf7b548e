"""schemathesis over the server's own OpenAPI: every documented operation, generated and fuzzed
requests, stateful sequences, all checks (status codes, response schemas, auth, Allow headers...)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.settings import Settings
from server.testing import LiveServer, shared_engine

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["no-key", "key"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, list[str]]]:
    key = "schema-test-key-0123456789" if request.param == "key" else None
    settings = Settings(
        data_dir=tmp_path,
        api_key=key,
        job_workers=0,
        render_processes=False,
        persona_voice_embeddings=False,
        max_sessions=2,
        session_rate_per_min=10_000,
        auth_failures_per_min=10_000,  # (the lockout is tested on its own; here the fuzzing reaches the routes)
    )
    with LiveServer(settings, shared_engine()) as srv:
        yield srv, (["-H", f"X-API-Key: {key}"] if key else [])


def test_schemathesis_finds_no_failure(live: tuple[LiveServer, list[str]]) -> None:
    srv, auth = live
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(ROOT / "tools" / "schemathesis.toml"),
        "run",
        f"{srv.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "8",
        "--seed",
        "7",
        "--no-color",
        *auth,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    tail = done.stdout[-6000:]
    assert done.returncode == 0, tail
    assert "unique failure" not in tail
