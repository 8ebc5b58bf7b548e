"""Festival's Czech voices as lip-sync training speech (tools.festival_speech, tools.czech_text): symbols read
by what the lips do, bilabials where the sound is, varied encodable sentences."""

from __future__ import annotations

import numpy as np
import pytest

from tools.czech_text import czech_sentence
from tools.festival_speech import CZECH_VOICES, FestivalError, FestivalVoice, festival_voices, read_segments


def test_czech_symbols_read_as_arpabet_by_what_the_lips_do() -> None:
    segs = "#\n0.10 100 #\n0.16 100 b\n0.25 100 a:\n0.30 100 _\n0.36 100 o\n0.42 100 m\n0.50 100 r~*\n"
    segs += "0.56 100 u:\n0.62 100 p\n0.70 100 f\n0.75 100 c~\n0.80 100 n*\n0.85 100 v\n0.95 100 #\n"
    phones = read_segments(segs, 1.0, "cs")
    # p/b/m stay bilabial, f/v labiodental, o/u rounded; the glottal stroke between vowels is a short silence
    assert [p.symbol for p in phones] == [
        "SIL", "B", "AA", "SIL", "AO", "M", "SH", "UW", "P", "F", "CH", "NG", "V", "SIL",
    ]  # fmt: skip
    assert phones[0].start_s == 0 and phones[-1].end_s == pytest.approx(1.0)
    assert phones[5].start_s == pytest.approx(0.36) and phones[5].end_s == pytest.approx(0.42)
    with pytest.raises(FestivalError, match="unknown festival voice 'czech_nobody'"):
        FestivalVoice("czech_nobody")


def test_czech_sentences_vary_and_are_iso_8859_2_text() -> None:
    rng = np.random.default_rng(0)
    sentences = [czech_sentence(rng) for _ in range(200)]
    assert len(set(sentences)) > 190
    for s in sentences:
        s.encode("iso-8859-2")  # the Czech voices read ISO-8859-2; every letter must have a code there
    words = " ".join(sentences).lower()
    assert sum(words.count(c) for c in "pbm") > 0.08 * sum(c.isalpha() for c in words)
    assert czech_sentence(np.random.default_rng(5)) == czech_sentence(np.random.default_rng(5))


@pytest.mark.skipif(
    not festival_voices(CZECH_VOICES), reason="Festival's Czech voices are not installed (scripts/setup.sh)"
)
def test_czech_voices_give_speech_with_exact_bilabial_timings() -> None:
    voice = festival_voices(CZECH_VOICES)[0]
    speech = FestivalVoice(voice).synthesize_sentence("Pavel má malý byt, ale babička ne.")
    symbols = [p.symbol for p in speech.phones]
    assert [s for s in symbols if s in ("P", "B", "M")] == ["P", "M", "M", "B", "B", "B"]
    assert speech.phones[0].start_s == 0 and abs(speech.phones[-1].end_s - speech.duration_s) < 1e-6
    x, sr = speech.samples, speech.sample_rate

    def rms(a: float, b: float) -> float:
        return float(np.sqrt(np.mean(x[int(a * sr) : int(b * sr)] ** 2)))

    # the closure of the p after the pause is quiet against the vowel after it: the timings are where the sound is
    p = next(ph for ph in speech.phones if ph.symbol == "P")
    vowel = speech.phones[speech.phones.index(p) + 1]
    assert rms(p.start_s, p.start_s + 0.6 * p.duration_s) < 0.3 * rms(vowel.start_s, vowel.end_s)
    # the written text reaches the voice: a sentence with long vowels and háčeks keeps them
    rich = FestivalVoice(voice).synthesize_sentence("Řeka šumí.")
    assert [p.symbol for p in rich.phones if p.symbol != "SIL"][:3] == ["ZH", "EH", "K"]
    slow = FestivalVoice(voice, stretch=1.5).synthesize_sentence("Pavel má malý byt, ale babička ne.")
    assert slow.duration_s > 1.3 * speech.duration_s
