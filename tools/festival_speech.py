"""Festival voices with exact phone timings, for the lip-sync training data.

Festival's English diphone voices (kal, ked) concatenate recorded diphones of real speakers and its HTS
voice (slt) is trained on one speaker's recordings, so their closures, bursts and murmurs are nearer to
recorded speech than formant synthesis; Festival reports where every segment ends, so the phones are
exact (no alignment). Debian: ``festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts``.
The Czech diphone voices (``festival-czech festvox-czech-dita festvox-czech-krb festvox-czech-machac
festvox-czech-ph``: an adult woman, a boy, two men) add recorded speakers of another language; their
durations are rule-based and the same for every voice, so callers vary the stretch and the text
(``tools.czech_text``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audio.io import load_audio
from audio.types import SILENCE, Phone, Speech

VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
CZECH_VOICES = ("czech_dita", "czech_krb", "czech_machac", "czech_ph")
# diphone voices of other languages (Debian festvox-italp16k festvox-itapc16k festvox-suopuhe-lj
# festvox-suopuhe-mv): their language, for held-out evaluation only
OTHER_VOICES = {"lp_diphone": "it", "pc_diphone": "it", "hy_fi_mv_diphone": "fi", "suo_fi_lj_diphone": "fi"}
VOICE_ROOTS = (Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices"))
# Festival's English ("radio") symbols outside the ARPAbet set the phonetic generator knows
_RADIO = {"AX": "AH", "AXR": "ER", "DX": "D", "EL": "L", "EM": "M", "EN": "N", "NX": "N", "HV": "HH",
          "PAU": SILENCE, "H#": SILENCE, "BRTH": SILENCE}  # fmt: skip


# the SAMPA-like symbols of the Italian and Finnish voices (stress digits and the length mark dropped) by
# what the lips and jaw do; trills as l (unrounded); "@" and "7" are how the Finnish voices write ä and ö
_SAMPA = {"#": SILENCE, "a": "AA", "e": "EH", "E": "EH", "i": "IY", "o": "AO", "O": "AO", "u": "UW", "y": "UW",
          "@": "AE", "7": "AO", "{": "AE", "2": "AO", "p": "P", "b": "B", "m": "M", "t": "T", "d": "D", "k": "K",
          "g": "G", "f": "F", "v": "V", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "ts": "S", "dz": "Z",
          "tS": "CH", "dZ": "JH", "n": "N", "J": "N", "N": "NG", "l": "L", "L": "L", "r": "L", "j": "Y",
          "w": "W", "h": "HH"}  # fmt: skip


# the Czech voices' symbols (``~`` palatal or post-alveolar, ``:`` long, ``*`` voiceless) by what the lips and
# jaw do: ř as the post-alveolar fricatives, the palatal stops as t/d, ch (velar fricative) and h as HH,
# ``_`` (the glottal stroke between vowels) and ``#`` as silence
_CZECH = {"#": SILENCE, "_": SILENCE, "a": "AA", "e": "EH", "i": "IY", "o": "AO", "u": "UW", "p": "P",
          "b": "B", "m": "M", "f": "F", "v": "V", "t": "T", "d": "D", "t~": "T", "d~": "D", "k": "K", "g": "G",
          "c": "S", "dz": "Z", "c~": "CH", "dz~": "JH", "s": "S", "z": "Z", "s~": "SH", "z~": "ZH",
          "r~": "ZH", "r~*": "SH", "ch": "HH", "h": "HH", "j": "Y", "l": "L", "r": "L", "n": "N", "n~": "N",
          "n*": "NG"}  # fmt: skip
# the encoding each language's voices read their text in
_ENCODING = {"en": "utf-8", "cs": "iso-8859-2", "it": "latin-1", "fi": "latin-1"}


def czech_symbol(symbol: str) -> str:
    """A Czech voice's segment symbol -> ARPAbet (long vowels as short; unknown symbols pass through upper-cased)."""
    base = symbol.rstrip(":") or symbol
    return _CZECH.get(base, base.upper())


def sampa_symbol(symbol: str) -> str:
    """An Italian or Finnish voice's segment symbol -> ARPAbet (unknown symbols pass through upper-cased)."""
    base = symbol.rstrip("0123456789:")
    if not base.strip("#"):
        return SILENCE
    return _SAMPA.get(base, base.upper())


class FestivalError(RuntimeError):
    """Festival is missing, or failed on a sentence."""


def festival_voices(voices: tuple[str, ...] = VOICES) -> list[str]:
    """Those of ``voices`` installed with the ``festival`` program ([] when it is not installed)."""
    if not shutil.which("festival"):
        return []
    return [v for v in voices if any(any(root.glob(f"*/{v}")) for root in VOICE_ROOTS if root.is_dir())]


def label_phones(text: str, symbol: Callable[[str], str], until_s: float | None = None) -> tuple[Phone, ...]:
    """A Festival label file (a ``#`` header, then end time, a number, a symbol per line) -> phones that tile
    it from 0, each symbol mapped by ``symbol``; neighbouring silences merge. ``until_s``: labels cut there,
    and silence up to it after the last one."""
    body = text.split("#", 1)[1] if "#" in text else text
    phones: list[Phone] = []
    start = 0.0

    def add(end: float, sym: str) -> None:
        if sym == SILENCE and phones and phones[-1].symbol == SILENCE:
            phones[-1] = Phone(phones[-1].start_s, end, SILENCE)
        else:
            phones.append(Phone(start, end, sym))

    for line in body.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        end = float(parts[0]) if until_s is None else min(float(parts[0]), until_s)
        sym = symbol(parts[2])
        if end > start:
            add(end, sym)
        start = max(start, end)
    if until_s is not None and until_s - start > 1e-3:
        add(until_s, SILENCE)
    return tuple(phones)


def read_segments(text: str, duration_s: float, language: str = "en") -> tuple[Phone, ...]:
    """Festival's segment label file (``utt.save.segs``) -> phones in ARPAbet up to ``duration_s``;
    ``language``: the voice's ("en", "cs", or "it"/"fi" for the SAMPA-like symbols)."""
    symbol = {"en": _radio_symbol, "cs": czech_symbol}.get(language, sampa_symbol)
    return label_phones(text, symbol, duration_s)


def voice_language(voice: str) -> str:
    """The language code of a known Festival voice ("en", "cs", "it", "fi")."""
    if voice in VOICES:
        return "en"
    if voice in CZECH_VOICES:
        return "cs"
    if voice in OTHER_VOICES:
        return OTHER_VOICES[voice]
    known = ", ".join((*VOICES, *CZECH_VOICES, *OTHER_VOICES))
    raise FestivalError(f"unknown festival voice {voice!r}; known: {known}")


def _radio_symbol(symbol: str) -> str:
    return _RADIO.get(symbol.upper(), symbol.upper())


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


class FestivalVoice:
    """One Festival voice; ``stretch`` > 1 speaks slower."""

    def __init__(self, voice: str, stretch: float = 1.0) -> None:
        if not shutil.which("festival"):
            raise FestivalError("festival is not installed (Debian: apt-get install festival)")
        self.language = voice_language(voice)
        self.voice = voice
        self.stretch = float(stretch)

    def synthesize_sentence(self, sentence: str) -> Speech:
        with tempfile.TemporaryDirectory(prefix="talker-festival-") as d:
            wav, segs, script = Path(d) / "out.wav", Path(d) / "out.segs", Path(d) / "say.scm"
            script.write_text(
                f"(voice_{self.voice})\n"
                f"(Parameter.set 'Duration_Stretch {self.stretch:.3f})\n"
                f"(set! utt (Utterance Text {_scheme_string(sentence)}))\n"
                "(utt.synth utt)\n"
                f'(utt.save.wave utt "{wav}" \'riff)\n'
                f'(utt.save.segs utt "{segs}")\n',
                encoding=_ENCODING[self.language],
                errors="replace",
            )
            try:
                subprocess.run(["festival", "-b", str(script)], check=True, capture_output=True, timeout=60)
                samples, sr = load_audio(wav)
                labels = segs.read_text(encoding="utf-8", errors="replace")
            except (OSError, subprocess.SubprocessError, ValueError) as e:
                raise FestivalError(f"festival failed on {sentence[:60]!r}: {e}") from e
        samples = np.asarray(samples, np.float32)
        return Speech(samples, sr, read_segments(labels, len(samples) / sr, self.language))
