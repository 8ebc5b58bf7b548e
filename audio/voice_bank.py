"""The voice bank: what a voice is (``Voice``, ``VoiceParams``), the built-in voices (Piper's ``joe``, every
espeak-ng voice and variant, flite and MBROLA when installed), voices added from files, and lookup by id.
``audio.voices`` chooses among them and builds their TTS."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

LANGUAGES = {
    "english": "en", "american": "en-us", "british": "en-gb", "scottish": "en-gb-scotland", "german": "de",
    "french": "fr", "spanish": "es", "italian": "it", "portuguese": "pt", "brazilian": "pt-br", "dutch": "nl",
    "russian": "ru", "polish": "pl", "chinese": "cmn", "mandarin": "cmn", "cantonese": "yue", "japanese": "ja",
    "korean": "ko", "arabic": "ar", "hindi": "hi", "turkish": "tr", "swedish": "sv", "greek": "el",
    "finnish": "fi", "danish": "da", "norwegian": "nb", "czech": "cs", "hungarian": "hu", "vietnamese": "vi",
}  # fmt: skip
"""Language words in descriptions -> language tags."""


def language_name(lang: str) -> str:
    for name, code in LANGUAGES.items():
        if code == lang:
            return name.capitalize()
    return lang


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
        return f"{self.age} {gender} voice, {language_name(self.language)}. {self.description}".strip()


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
