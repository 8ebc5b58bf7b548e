"""Choosing a persona from its description: expression, idle style, name and prompt from its words, the
bundled portrait that matches it best, and the voice bank's best voice."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

from audio.types import TTS
from talker.persona_model import MAX_NAME_CHARS, PersonaError

# --- words of the description -------------------------------------------------------------------------

_EXPRESSION_WORDS = {
    "happy": {"cheerful", "happy", "jolly", "merry", "joyful", "smiling", "friendly", "upbeat", "bubbly", "sunny"},
    "sad": {"sad", "melancholy", "melancholic", "gloomy", "sorrowful", "mournful", "weary", "depressed"},
    "angry": {"angry", "grumpy", "furious", "irritable", "stern", "cranky", "grouchy", "fierce"},
    "surprised": {"surprised", "astonished", "amazed", "startled", "wide-eyed"},
}
_LIVELY_WORDS = {"lively", "energetic", "excited", "bubbly", "enthusiastic", "animated", "jolly", "hyper", "playful"}
_CALM_WORDS = {"calm", "serene", "wise", "gentle", "quiet", "shy", "old", "elderly", "stoic", "composed", "sleepy"}
_ARTICLES = {"a", "an", "the"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z'-]*", text.lower())


def expression_from_description(description: str) -> tuple[str, float]:
    """(expression, intensity) implied by the description; a mild one, since it stays on for every word."""
    toks = set(_words(description))
    for name, words in _EXPRESSION_WORDS.items():
        if toks & words:
            return name, 0.5
    return "neutral", 1.0


def idle_from_description(description: str) -> str:
    toks = set(_words(description))
    if toks & _LIVELY_WORDS:
        return "lively"
    if toks & _CALM_WORDS:
        return "calm"
    return "neutral"


def name_from_description(description: str, fallback: str = "Persona") -> str:
    """'a cheerful old sea captain' -> 'Cheerful Old Sea Captain' (first clause, at most 6 words)."""
    first = re.split(r"[,.;:!?()\n]", description.strip(), maxsplit=1)[0]
    words = [w for w in first.split() if w.lower() not in _ARTICLES][:6]
    name = " ".join(w[:1].upper() + w[1:] for w in words)
    return name[:MAX_NAME_CHARS] or fallback


def system_prompt_for(name: str, description: str) -> str:
    who = f"{name}, {description.strip().rstrip('.')}" if description.strip() else name
    return (
        f"You are {who}. Stay in character. Your words are spoken aloud by a talking face: answer in a few short "
        "sentences of plain text, without lists, markdown or emoji."
    )


# --- bundled portraits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundledPortrait:
    """A public-domain portrait shipped in ``talker/assets``, described for matching."""

    name: str
    filename: str
    description: str
    gender: str  # "female" | "male" | "unknown"
    age: str  # "young" | "adult" | "old"
    credit: str

    @property
    def path(self) -> Path:
        return Path(str(files("talker").joinpath("assets", self.filename)))


BUNDLED_PORTRAITS: tuple[BundledPortrait, ...] = (
    BundledPortrait(
        "eileen_collins",
        "portrait.png",
        "smiling middle-aged woman with short brown hair, NASA astronaut in an orange flight suit, "
        "friendly, confident, American flag and space shuttle model behind; photograph",
        "female",
        "adult",
        "NASA official portrait of astronaut Eileen Collins (public domain), via scikit-image",
    ),
    BundledPortrait(
        "barack_obama",
        "obama.jpg",
        "smiling middle-aged man with short dark greying hair, in a dark suit and tie, warm, confident, "
        "statesman, official portrait in an office; photograph",
        "male",
        "adult",
        "official White House portrait of Barack Obama by Pete Souza (public domain, US government)",
    ),
    BundledPortrait(
        "einstein",
        "einstein.jpg",
        "young man with dark curly hair and a thick moustache, dark suit and high white collar, thoughtful, "
        "scholarly, old-fashioned, vintage nineteenth-century photograph",
        "male",
        "young",
        "photograph of Albert Einstein, about 1904 (public domain), colourised",
    ),
    BundledPortrait(
        "mona_lisa",
        "mona_lisa.jpg",
        "woman with long dark hair and a faint, mysterious smile, calm and serene, Renaissance oil painting, "
        "landscape behind; classical art",
        "female",
        "adult",
        "Leonardo da Vinci, Mona Lisa (public domain painting)",
    ),
)

_FEMALE = {"woman", "women", "female", "lady", "girl", "she", "her", "mother", "grandma", "aunt", "queen", "wife"}
_MALE = {"man", "men", "male", "guy", "boy", "he", "his", "father", "grandpa", "gentleman", "king", "husband"}
_OLD = {"old", "elderly", "aged", "senior", "grandma", "grandpa", "ancient", "grey-haired", "gray-haired"}
_YOUNG = {"young", "youthful", "teen", "teenage", "kid", "child", "girl", "boy"}


def rank_portraits(
    description: str, portraits: Sequence[BundledPortrait] = BUNDLED_PORTRAITS
) -> list[tuple[BundledPortrait, float]]:
    """Portraits scored against a description (word overlap + gender and age agreement), best first."""
    if not portraits:
        raise PersonaError("no bundled portraits to choose from")
    toks = set(_words(description))
    want_gender = "female" if toks & _FEMALE else "male" if toks & _MALE else None
    want_age = "old" if toks & _OLD else "young" if toks & _YOUNG else None
    scored = []
    for p in portraits:
        ptoks = set(_words(p.description))
        s = len(toks & ptoks) / max(1, len(toks)) * 0.5
        if want_gender:
            s += 0.4 if p.gender == want_gender else -0.4
        if want_age:
            s += 0.2 if p.age == want_age else -0.1
        scored.append((p, round(s, 4)))
    return sorted(scored, key=lambda t: -t[1])


# --- the voice bank ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceRank:
    voice_id: str
    score: float
    summary: str


@dataclass(frozen=True)
class VoicePick:
    voice_id: str
    params: dict[str, Any]
    ranking: tuple[VoiceRank, ...]


class VoiceBank(Protocol):
    """What personas need of a voice bank."""

    def choose(self, description: str) -> VoicePick: ...

    def tts(self, voice_id: str, params: dict[str, Any]) -> TTS: ...


class AudioVoiceBank:
    """``audio.voices``: ``choose_voice`` (sentence embeddings + keywords) and ``make_tts``.

    ``use_embeddings=False`` ranks by keywords only (fast, no model load).
    """

    def __init__(self, use_embeddings: bool = True) -> None:
        self.use_embeddings = use_embeddings

    def choose(self, description: str) -> VoicePick:
        from audio import voices

        best, ranking = voices.choose_voice(description, use_embeddings=self.use_embeddings)
        ranks = tuple(
            VoiceRank(v.id, float(s), f"{v.gender}, {v.age}, {v.language}: {v.description}") for v, s in ranking
        )
        return VoicePick(best.id, asdict(best.params), ranks)

    def tts(self, voice_id: str, params: dict[str, Any]) -> TTS:
        from audio import voices

        known = {f.name for f in fields(voices.VoiceParams)}
        try:
            p = voices.VoiceParams(**{k: v for k, v in params.items() if k in known})
        except (TypeError, ValueError) as e:
            raise PersonaError(f"voice parameters {params} are not valid: {e}") from e
        return voices.make_tts(voice_id, p)


def default_voice_bank(use_embeddings: bool = True) -> VoiceBank:
    return AudioVoiceBank(use_embeddings)
