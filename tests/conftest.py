from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("TALKER_MEDIA", ROOT.parent / "shared" / "media"))


def media(*parts: str) -> Path:
    p = MEDIA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"test media {p} not available (set TALKER_MEDIA)")
    return p


@pytest.fixture(scope="session")
def pipeline():
    from talker.pipeline import Pipeline

    return Pipeline()
