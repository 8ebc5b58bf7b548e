"""Coqui TTS backend: a model from a local folder (``config.json`` + checkpoint), never downloaded.

Coqui models report no phoneme timings, so each synthesized sentence is force-aligned to its own text
with ``audio.align`` (pocketsphinx) to give the ``Speech`` timeline. The ``TTS`` package (PyPI
``coqui-tts``, which needs torch) is imported only here, when a Coqui voice is built.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from audio.text import FIRST_PIECE_CHARS, clean_text, split_sentences
from audio.types import Speech, SpeechChunk, concat_speech

INSTALL_HINT = "pip install coqui-tts  (it provides the 'TTS' package; it needs torch)"
_CHECKPOINT_NAMES = ("model.pth", "best_model.pth", "model_file.pth", "checkpoint.pth", "model.safetensors")


class CoquiTTSError(RuntimeError):
    """A Coqui voice cannot be used: folder incomplete, the ``TTS`` package missing, or synthesis failed."""


def find_model_files(model_dir: str | Path) -> tuple[Path, Path]:
    """(checkpoint, config.json) inside a Coqui model folder; ``CoquiTTSError`` naming what is missing."""
    d = Path(model_dir)
    if not d.is_dir():
        raise CoquiTTSError(f"Coqui model folder not found: {d}")
    config = d / "config.json"
    if not config.is_file():
        raise CoquiTTSError(f"Coqui model folder {d} has no config.json")
    for name in _CHECKPOINT_NAMES:
        if (d / name).is_file():
            return d / name, config
    found = sorted(p for p in d.iterdir() if p.suffix in (".pth", ".pt", ".safetensors") and p.is_file())
    if not found:
        raise CoquiTTSError(f"Coqui model folder {d} has no checkpoint (*.pth, *.pt or *.safetensors)")
    return found[0], config


def _import_coqui(model_dir: Path) -> Any:
    try:
        from TTS.api import TTS as CoquiAPI  # type: ignore[import-not-found]
    except ImportError as e:
        raise CoquiTTSError(
            f"cannot load the Coqui model in {model_dir}: the Coqui TTS package is not installed "
            f"(import of 'TTS.api' failed: {e}). Install it with: {INSTALL_HINT}"
        ) from e
    return CoquiAPI


class CoquiTTS:
    """A Coqui TTS voice from a local model folder; ``stream`` yields one chunk per sentence.

    Args:
        model_dir: folder with ``config.json`` and the checkpoint (``model.pth`` / ``best_model.pth`` ...).
        speaker, language: for multi-speaker / multilingual models.
        speed: speaking-rate factor (models that support it).
        device: "cpu" or a torch device string, chosen by the caller.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        speaker: str | None = None,
        language: str | None = None,
        speed: float = 1.0,
        device: str = "cpu",
    ) -> None:
        self.model_dir = Path(model_dir)
        self.model_path, self.config_path = find_model_files(self.model_dir)
        self._api_cls = _import_coqui(self.model_dir)  # fail now, with the install hint, not mid-stream
        self.speaker = speaker
        self.language = language
        self.speed = float(speed)
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    model = self._api_cls(
                        model_path=str(self.model_path), config_path=str(self.config_path), progress_bar=False
                    )
                    self._model = model.to(self.device)
                except Exception as e:  # noqa: BLE001 - Coqui raises many kinds; report them as one
                    raise CoquiTTSError(f"loading the Coqui model in {self.model_dir} failed: {e}") from e
            return self._model

    @property
    def sample_rate(self) -> int:
        return int(self._load().synthesizer.output_sample_rate)

    def synthesize_sentence(self, sentence: str) -> Speech:
        """One sentence -> ``Speech``; the timeline comes from forced alignment of the audio to the sentence."""
        from audio.align import default_aligner

        model = self._load()
        kw: dict[str, Any] = {"text": sentence}
        if self.speaker:
            kw["speaker"] = self.speaker
        if self.language:
            kw["language"] = self.language
        if abs(self.speed - 1.0) > 1e-3:
            kw["speed"] = self.speed
        try:
            wav = model.tts(**kw)
        except Exception as e:  # noqa: BLE001
            raise CoquiTTSError(f"Coqui synthesis failed for {sentence[:60]!r}: {e}") from e
        samples = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
        if len(samples) == 0:
            raise CoquiTTSError(f"Coqui produced no audio for {sentence[:60]!r}")
        return default_aligner().align(samples, self.sample_rate, sentence).speech

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        text = clean_text(text)
        pieces = split_sentences(text, first_max_chars=FIRST_PIECE_CHARS)
        for i, piece in enumerate(pieces):
            yield SpeechChunk(self.synthesize_sentence(piece), i, i == len(pieces) - 1, piece)

    def synthesize(self, text: str) -> Speech:
        return concat_speech([c.speech for c in self.stream(text)], clean_text(text))
