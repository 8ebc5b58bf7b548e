"""audio.coqui_tts: real loading code for a local Coqui model folder; clear errors without the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from audio.coqui_tts import CoquiTTS, CoquiTTSError, find_model_files
from audio.voices import make_tts

coqui_missing = importlib.util.find_spec("TTS") is None


def _model_dir(tmp_path: Path, checkpoint: str = "model.pth") -> Path:
    d = tmp_path / "my_coqui_voice"
    d.mkdir()
    (d / "config.json").write_text('{"model": "vits", "audio": {"sample_rate": 22050}}')
    (d / checkpoint).write_bytes(b"\0" * 64)
    return d


def test_folder_problems_are_named(tmp_path: Path):
    with pytest.raises(CoquiTTSError, match="not found.*nowhere"):
        CoquiTTS(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CoquiTTSError, match="no config.json"):
        CoquiTTS(empty)
    (empty / "config.json").write_text("{}")
    with pytest.raises(CoquiTTSError, match="no checkpoint"):
        CoquiTTS(empty)


def test_checkpoint_lookup(tmp_path: Path):
    d = _model_dir(tmp_path, "best_model_1000.pth")
    model, config = find_model_files(d)
    assert model.name == "best_model_1000.pth" and config.name == "config.json"


@pytest.mark.skipif(not coqui_missing, reason="the TTS package is installed here")
def test_missing_package_says_what_to_install(tmp_path: Path):
    d = _model_dir(tmp_path)
    with pytest.raises(CoquiTTSError, match=r"not installed.*pip install coqui-tts") as info:
        CoquiTTS(d)
    assert str(d) in str(info.value) and isinstance(info.value.__cause__, ImportError)
    with pytest.raises(CoquiTTSError, match="pip install coqui-tts"):
        make_tts(f"coqui:{d}")
