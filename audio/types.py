"""Stage values produced by ``audio/``: speech samples with a phone and word timeline.

Phones use ONE inventory everywhere in talker: ARPAbet without stress digits
(``AA``, ``B``, ...), plus ``SIL`` for pauses. Stress is kept as a separate field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SILENCE = "SIL"


@dataclass(frozen=True)
class Phone:
    """One phone: [start_s, end_s) in seconds, an ARPAbet symbol, lexical stress (0 none, 1 primary, 2 secondary)."""

    start_s: float
    end_s: float
    symbol: str
    stress: int = 0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Word:
    """One word with its time span in seconds."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Speech:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` Hz, with a phone and word timeline.

    Phones cover the whole duration without gaps (pauses are ``SIL`` phones).
    """

    samples: np.ndarray
    sample_rate: int
    phones: tuple[Phone, ...]
    words: tuple[Word, ...] = ()
    text: str = ""

    def __post_init__(self) -> None:
        if self.samples.ndim != 1:
            raise ValueError(f"Speech samples must be mono (1-D), got shape {self.samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    def shifted(self, offset_s: float) -> tuple[tuple[Phone, ...], tuple[Word, ...]]:
        """Phones and words moved by ``offset_s`` seconds (used to join chunks)."""
        phones = tuple(Phone(p.start_s + offset_s, p.end_s + offset_s, p.symbol, p.stress) for p in self.phones)
        words = tuple(Word(w.start_s + offset_s, w.end_s + offset_s, w.text) for w in self.words)
        return phones, words

    def slice(self, start: int, end: int) -> Speech:
        """Samples ``[start, end)`` with the phones and words inside them (clipped at both ends), timed
        from the slice's start. Consecutive slices joined again give back this speech."""
        n = len(self.samples)
        start, end = max(0, min(start, n)), max(0, min(end, n))
        if end <= start:
            raise ValueError(f"empty slice [{start}, {end}) of {n} samples")
        t0, t1 = start / self.sample_rate, end / self.sample_rate
        phones = tuple(
            Phone(max(p.start_s, t0) - t0, min(p.end_s, t1) - t0, p.symbol, p.stress)
            for p in self.phones
            if p.end_s > t0 and p.start_s < t1
        )
        words = tuple(
            Word(max(w.start_s, t0) - t0, min(w.end_s, t1) - t0, w.text)
            for w in self.words
            if w.end_s > t0 and w.start_s < t1
        )
        return Speech(self.samples[start:end], self.sample_rate, phones, words, self.text)


@dataclass(frozen=True)
class SpeechChunk:
    """A piece of a streamed utterance (one sentence or clause). Times inside ``speech`` start at 0."""

    speech: Speech
    index: int
    is_last: bool
    source_text: str = ""
    extra: dict[str, object] = field(default_factory=dict)


class TTS(Protocol):
    """The voice protocol, one for the whole project: a sample rate, and text streamed out sentence by
    sentence as ``SpeechChunk``s (Piper, espeak-ng, flite, Coqui, the voice bank's wrappers, the server's)."""

    @property
    def sample_rate(self) -> int: ...

    def stream(self, text: str) -> Iterator[SpeechChunk]: ...


def concat_speech(chunks: list[Speech], text: str = "") -> Speech:
    """Join speech pieces end to end (all must share one sample rate)."""
    if not chunks:
        raise ValueError("concat_speech needs at least one piece")
    sr = chunks[0].sample_rate
    phones: list[Phone] = []
    words: list[Word] = []
    offset = 0.0
    parts = []
    for c in chunks:
        if c.sample_rate != sr:
            raise ValueError(f"cannot join speech at {c.sample_rate} Hz to speech at {sr} Hz")
        p, w = c.shifted(offset)
        phones.extend(p)
        words.extend(w)
        parts.append(c.samples)
        offset += c.duration_s
    return Speech(np.concatenate(parts).astype(np.float32), sr, tuple(phones), tuple(words), text)


def silence(duration_s: float, sample_rate: int) -> Speech:
    """``duration_s`` of silence as one SIL phone."""
    n = int(round(max(0.0, duration_s) * sample_rate))
    phones = (Phone(0.0, n / sample_rate, SILENCE),) if n else ()
    return Speech(np.zeros(n, np.float32), sample_rate, phones)
