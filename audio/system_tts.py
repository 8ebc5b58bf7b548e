"""Speech engines found on the system at run time: flite, and MBROLA voices through espeak-ng.

Neither ships with talker; when the ``flite`` program (Debian ``flite``) or the ``mbrola`` program and a
voice database (e.g. Debian ``mbrola-us1`` in non-free) are installed, their voices join the bank.
flite's command line reports no timings, so each sentence it speaks is force-aligned to its own text
(pocketsphinx, ``audio.align``: median boundary error ~11 ms on exact synthetic labels).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from audio.text import clean_text, split_sentences
from audio.types import Speech, SpeechChunk

# flite's bundled voices: (gender, age, description)
FLITE_VOICES = {
    "slt": ("female", "adult", "American English woman, clear, neutral, slightly synthetic"),
    "rms": ("male", "adult", "American English man, deep, flat, synthetic"),
    "awb": ("male", "adult", "Scottish English man, synthetic"),
    "kal16": ("male", "adult", "American English man, robotic, old-fashioned diphone synthesizer"),
    "kal": ("male", "adult", "American English man, robotic, telephone quality"),
}
MBROLA_DIRS = (Path("/usr/share/mbrola"), Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/mbrola"))


class SystemTTSError(RuntimeError):
    """A system speech engine is missing or failed."""


def flite_voices() -> list[str]:
    """Voices of the installed ``flite`` program ([] when flite is not installed)."""
    exe = shutil.which("flite")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "-lv"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    names = out.split(":", 1)[-1].split()
    return [n for n in names if n in FLITE_VOICES]


def mbrola_voices() -> list[str]:
    """espeak-ng MBROLA voice names (``mb-us1``...) whose database is installed, when ``mbrola`` exists."""
    if not shutil.which("mbrola"):
        return []
    found = []
    for d in MBROLA_DIRS:
        if d.is_dir():
            found += [f"mb-{p.name}" for p in sorted(d.iterdir()) if p.is_dir() and (p / p.name).exists()]
    return sorted(set(found))


class FliteTTS:
    """flite speech with phone timings from forced alignment of each sentence to its text."""

    def __init__(self, voice: str = "slt", rate: float = 1.0) -> None:
        self.exe = shutil.which("flite")
        if not self.exe:
            raise SystemTTSError("flite is not installed (Debian: apt-get install flite)")
        if voice not in FLITE_VOICES:
            raise SystemTTSError(f"unknown flite voice {voice!r}; known: {', '.join(FLITE_VOICES)}")
        self.voice = voice
        self.rate = float(rate)

    @property
    def sample_rate(self) -> int:
        return 8000 if self.voice == "kal" else 16000

    def synthesize_sentence(self, sentence: str) -> Speech:
        from audio.align import Aligner, default_aligner
        from audio.io import load_audio

        with tempfile.TemporaryDirectory(prefix="talker-flite-") as d:
            wav = Path(d) / "out.wav"
            cmd = [str(self.exe), "-voice", self.voice, "--setf", f"duration_stretch={1.0 / max(self.rate, 0.1):.3f}",
                   "-t", sentence, "-o", str(wav)]  # fmt: skip
            try:
                subprocess.run(cmd, check=True, capture_output=True, timeout=60)
            except (OSError, subprocess.SubprocessError) as e:
                raise SystemTTSError(f"flite failed on {sentence[:60]!r}: {e}") from e
            samples, sr = load_audio(wav)
        aligner: Aligner = default_aligner()
        result = aligner.align(samples, sr, sentence)
        sp = result.speech
        return Speech(sp.samples, sp.sample_rate, sp.phones, sp.words, sentence)

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        pieces = split_sentences(clean_text(text))
        for i, piece in enumerate(pieces):
            yield SpeechChunk(self.synthesize_sentence(piece), i, i == len(pieces) - 1, piece)
