"""espeak-ng TTS backend (formant synthesis, ~140 languages x ~100 voice variants) with exact phone timings.

libespeak-ng reports a phoneme event at the exact output sample where each phoneme starts (and a word
event per word); those become ARPAbet ``Phone`` intervals in the same inventory Piper uses. Voices are
espeak-ng names ("en-us", "en-gb", "de", ...) optionally with a variant ("en-us+f3", or ``variant="f3"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from audio import espeak
from audio.phonemes import VOWELS, ipa_units
from audio.text import FIRST_PIECE_CHARS, check_script, clean_text, split_sentences
from audio.types import SILENCE, Phone, Speech, SpeechChunk, Word, concat_speech
from audio.words import label_words

DEFAULT_RATE_WPM = 175


class EspeakTTSError(RuntimeError):
    """espeak-ng could not synthesize (unknown voice, library missing, nothing produced)."""


@dataclass(frozen=True)
class EspeakParams:
    """Voice parameters.

    rate: speed factor (1.0 = 175 words per minute; clamped to 80-450 wpm).
    pitch: base pitch 0-100 (50 default). pitch_range: intonation range 0-100 (50 default; 0 = monotone).
    volume: amplitude factor (1.0 default, up to 2.0). variant: a ``voices/!v`` variant id ("f3", "m1",
    "klatt", "whisper", ...). word_gap_ms: extra pause between words.
    """

    rate: float = 1.0
    pitch: int = 50
    pitch_range: int = 50
    volume: float = 1.0
    variant: str | None = None
    word_gap_ms: int = 0


class EspeakTTS:
    """Synthesize with an espeak-ng voice; ``stream`` yields one ``SpeechChunk`` per sentence or clause."""

    def __init__(self, voice: str = "en-us", params: EspeakParams | None = None) -> None:
        self.params = params or EspeakParams()
        base, _, inline_variant = voice.partition("+")
        variant = self.params.variant or inline_variant or None
        self.voice = base
        try:
            self.voice_name = espeak.resolve_voice(f"{base}+{variant}" if variant else base)
            probe = espeak.text_to_ipa("a", self.voice_name)
        except espeak.EspeakError as e:
            raise EspeakTTSError(f"espeak-ng voice {voice!r} is not available: {e}") from e
        if not probe:
            raise EspeakTTSError(f"espeak-ng voice {voice!r} produced no phonemes")

    @property
    def sample_rate(self) -> int:
        return espeak.sample_rate()

    def synthesize_sentence(self, sentence: str) -> Speech:
        """One sentence (no splitting) -> ``Speech`` with exact phone and word timings."""
        check_script(sentence, self.voice, f"espeak:{self.voice}")
        p = self.params
        wpm = int(round(min(max(DEFAULT_RATE_WPM * p.rate, 80), 450)))
        try:
            blocks, events = espeak.synthesize(
                sentence,
                self.voice_name,
                rate_wpm=wpm,
                pitch=int(min(max(p.pitch, 0), 100)),
                pitch_range=int(min(max(p.pitch_range, 0), 100)),
                volume=int(min(max(p.volume, 0.0), 2.0) * 100),
                word_gap=max(0, int(round(p.word_gap_ms / 10))),
            )
        except espeak.EspeakError as e:
            raise EspeakTTSError(str(e)) from e
        if not blocks:
            raise EspeakTTSError(f"espeak-ng produced no audio for {sentence[:60]!r}")
        samples = (np.concatenate(blocks).astype(np.float32) / 32768.0).astype(np.float32)
        phones, words = events_to_timeline(events, len(samples), self.sample_rate, sentence)
        return Speech(samples, self.sample_rate, phones, words, sentence)

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        """Yield one chunk per sentence/clause; the first is ready before the rest is synthesized."""
        text = clean_text(text)
        pieces = split_sentences(text, first_max_chars=FIRST_PIECE_CHARS)
        for i, piece in enumerate(pieces):
            speech = self.synthesize_sentence(piece)
            yield SpeechChunk(speech=speech, index=i, is_last=i == len(pieces) - 1, source_text=piece)

    def synthesize(self, text: str) -> Speech:
        """The whole text as one ``Speech`` (chunks joined)."""
        chunks = [c.speech for c in self.stream(text)]
        return concat_speech(chunks, clean_text(text))


def events_to_timeline(
    events: list[espeak.EspeakEvent], n_samples: int, sr: int, text: str
) -> tuple[tuple[Phone, ...], tuple[Word, ...]]:
    """Phoneme/word events (start samples) -> contiguous ARPAbet phones and word spans.

    A phoneme spans from its event to the next phoneme event (or the end). Events with an empty label are
    pauses (SIL). One IPA event that maps to several ARPAbet phones (e.g. "aɪə" -> AY AH) is split evenly.
    """
    ph_events = [e for e in events if e.kind == "phoneme" and e.sample <= n_samples]
    segs: list[list] = []  # [start, end, symbol, stress] in samples
    if not ph_events or ph_events[0].sample > 0:
        segs.append([0, ph_events[0].sample if ph_events else n_samples, SILENCE, 0])
    for i, ev in enumerate(ph_events):
        end = ph_events[i + 1].sample if i + 1 < len(ph_events) else n_samples
        if end <= ev.sample:
            continue
        units = _label_units(ev.label)
        if not units:
            segs.append([ev.sample, end, SILENCE, 0])
            continue
        edges = np.linspace(ev.sample, end, len(units) + 1).round().astype(int)
        for (sym, stress), a, b in zip(units, edges[:-1], edges[1:]):
            if b > a:
                segs.append([int(a), int(b), sym, stress])
    if segs and segs[-1][1] < n_samples:
        segs.append([segs[-1][1], n_samples, SILENCE, 0])
    merged: list[list] = []
    for s in segs:
        if merged and s[2] == SILENCE and merged[-1][2] == SILENCE:
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    phones = tuple(Phone(a / sr, b / sr, sym, st) for a, b, sym, st in merged)
    return phones, _words(events, merged, n_samples, sr, text)


def _words(events: list[espeak.EspeakEvent], segs: list[list], n_samples: int, sr: int, text: str) -> tuple[Word, ...]:
    """One ``Word`` per written word: espeak-ng's word events give the spans (a span runs from its event to
    the next one, trimmed to its sounding phones); ``label_words`` matches them to the text."""
    starts = [e.sample for e in events if e.kind == "word"]
    spans = [(a / sr, (starts[i + 1] if i + 1 < len(starts) else n_samples) / sr) for i, a in enumerate(starts)]
    phones = [Phone(a / sr, b / sr, sym, st) for a, b, sym, st in segs]
    return label_words(phones, spans, text)


def _label_units(label: str) -> list[tuple[str, int]]:
    """ARPAbet (symbol, stress) for one IPA phoneme label ("ˈaʊ" -> [("AW", 1)]); [] for a pause."""
    if not label.strip():
        return []
    out: list[tuple[str, int]] = []
    stress = 0
    for unit, _ in ipa_units(list(label)):
        if unit.startswith("'"):
            stress = int(unit[1])
        elif unit in ("|", ",", ":"):
            continue
        elif unit == "?":
            continue
        else:
            out.append((unit, stress if unit in VOWELS else 0))
            if unit in VOWELS:
                stress = 0
    return out
