from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "media"  # freely licensed portraits and recordings kept in the repository
MEDIA = Path(os.environ.get("TALKER_MEDIA", ROOT.parent / "shared" / "media"))  # the larger set, when present
# servers in tests admit sessions by count only: on a busy test host late frames would refuse them
# (tests/test_server_http.py sets the late-frame limit itself)
os.environ.setdefault("TALKER_ADMIT_MAX_LATE_PCT", "0")


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


def write_video(path: Path, frames: list, audio=None, fps: float = 25.0, sr: int = 16000, marks: bool = True) -> Path:  # type: ignore[no-untyped-def]
    """An MP4 of RGB ``frames`` with mono float32 ``audio`` (silence when None), frame k carrying its samples."""
    import numpy as np

    from talker.mp4 import Mp4Writer

    n = int(round(len(frames) * sr / fps))
    samples = np.zeros(n, np.float32) if audio is None else np.asarray(audio, np.float32)
    # (veryfast: one fixed encode of the test clips; the dub and avatar tests' closed-lip margins are thin)
    with Mp4Writer(path, frames[0].shape[1], frames[0].shape[0], fps, sr, crf=14, preset="veryfast", marks=marks) as w:
        for k, f in enumerate(frames):
            a, b = int(round(k * sr / fps)), int(round((k + 1) * sr / fps))
            seg = samples[a:b]
            w.write_audio(np.concatenate([seg, np.zeros(b - a - len(seg), np.float32)]))
            w.write_video(f)
    return path


def psnr(a, b) -> float:  # type: ignore[no-untyped-def]
    """Peak signal-to-noise ratio of two 8-bit images, in dB (inf when identical)."""
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
