"""Recorded speech with phone labels found in packages: the recordings a Festival unit-selection voice is
built from.

A clunits voice ships the speaker's own recordings (``wav/``) with one phone label file per recording
(``lab/``: end time, a number, a symbol per line), so it is real read speech with phone timings. Debian's
``festvox-ru`` holds 620 sentences (about 90 minutes) of one male Russian speaker. Its phones map to the
ARPAbet symbols the phonetic generator knows by what the lips and jaw do (soft consonants as their hard
ones, the reduced vowels as a schwa, the trilled r as l: unrounded).

Every eighth sentence (by a hash of its name) is held out: the lip-sync evaluation scores on it, the
training data never draws from it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from audio.io import load_audio
from audio.types import SILENCE, Phone, Speech
from tools.festival_speech import VOICE_ROOTS, label_phones

# msu_ru phone set (festvox-ru) -> ARPAbet
_MSU_RU = {
    "pau": SILENCE, "ii": "IY", "i": "IH", "yy": "IH", "y": "IH", "uu": "UW", "u": "UW", "ur": "UH",
    "ee": "EH", "e": "EH", "oo": "AO", "aa": "AA", "a": "AH", "ae": "AH", "ay": "AH",
    "p": "P", "pp": "P", "b": "B", "bb": "B", "m": "M", "mm": "M", "t": "T", "tt": "T", "d": "D", "dd": "D",
    "k": "K", "kk": "K", "g": "G", "gg": "G", "c": "S", "ch": "CH", "f": "F", "ff": "F", "v": "V", "vv": "V",
    "s": "S", "ss": "S", "z": "Z", "zz": "Z", "sh": "SH", "sch": "SH", "zh": "ZH", "h": "HH", "hh": "HH",
    "n": "N", "nn": "N", "l": "L", "ll": "L", "r": "L", "rr": "L", "j": "Y",
}  # fmt: skip
CORPORA = {"russian/msu_ru_nsh_clunits": ("ru", _MSU_RU)}
HELD_OUT_EVERY = 8


class CorpusError(RuntimeError):
    """A recording or its label file is missing or unreadable."""


@dataclass(frozen=True)
class Recording:
    corpus: str  # the voice folder, e.g. "russian/msu_ru_nsh_clunits"
    lang: str
    name: str  # e.g. "ru_0001"
    wav: Path
    lab: Path

    @property
    def held_out(self) -> bool:
        return is_held_out(self.name)


def is_held_out(name: str) -> bool:
    """Whether a recording belongs to the evaluation split (never drawn for training)."""
    return zlib.crc32(name.encode()) % HELD_OUT_EVERY == 0


def recordings(roots: tuple[Path, ...] = VOICE_ROOTS) -> list[Recording]:
    """Every labelled recording of the known corpora installed under ``roots`` (sorted; [] when none)."""
    found = []
    for root in roots:
        for corpus, (lang, _) in CORPORA.items():
            folder = root / corpus
            if not (folder / "lab").is_dir() or not (folder / "wav").is_dir():
                continue
            for lab in sorted((folder / "lab").glob("*.lab")):
                wav = folder / "wav" / f"{lab.stem}.wav"
                if wav.is_file():
                    found.append(Recording(corpus, lang, lab.stem, wav, lab))
    return found


def read_labels(text: str, phone_map: dict[str, str]) -> tuple[Phone, ...]:
    """A label file -> ARPAbet phones that tile the recording from 0 (``tools.festival_speech.label_phones``).
    An unknown symbol raises ``CorpusError``."""

    def symbol(sym: str) -> str:
        if sym not in phone_map:
            raise CorpusError(f"unknown phone {sym!r}")
        return phone_map[sym]

    return label_phones(text, symbol)


def load(rec: Recording, sample_rate: int = 16000) -> Speech:
    """The recording at ``sample_rate`` with its phones; the last phone ends at the audio's end."""
    try:
        audio, _ = load_audio(rec.wav, sample_rate)
        phones = read_labels(rec.lab.read_text(encoding="utf-8", errors="replace"), CORPORA[rec.corpus][1])
    except (OSError, ValueError) as e:
        raise CorpusError(f"{rec.wav.name}: {e}") from e
    if not phones:
        raise CorpusError(f"{rec.lab.name}: no phones")
    dur = len(audio) / sample_rate
    kept = [p for p in phones if p.start_s < dur]
    last = kept[-1]
    kept[-1] = Phone(last.start_s, dur, last.symbol, last.stress)
    return Speech(audio, sample_rate, tuple(kept))
