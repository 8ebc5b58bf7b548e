from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "media"  # freely licensed portraits and recordings kept in the repository
MEDIA = Path(os.environ.get("TALKER_MEDIA", ROOT.parent / "shared" / "media"))  # the larger set, when present


def media(*parts: str) -> Path:
    """A test file from the repository's copies, else from the larger media folder. A folder (``media()``,
    ``media("nonhuman")``) comes from the larger set when it is there, since whole-folder checks count its
    files, else from the repository. Skips when neither has it."""
    ours, theirs = DATA.joinpath(*parts), MEDIA.joinpath(*parts)
    for p in (theirs, ours) if theirs.is_dir() else (ours, theirs):
        if p.exists():
            return p
    pytest.skip(f"test media {theirs} not available (set TALKER_MEDIA)")


@pytest.fixture(scope="session")
def pipeline():
    from talker.pipeline import Pipeline

    return Pipeline()
