"""audio.espeak_tts / audio.espeak / audio.g2p: espeak-ng through ctypes, exact phone timings."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import media

from audio.espeak import list_variants, list_voices, text_to_ipa
from audio.espeak_tts import EspeakParams, EspeakTTS, EspeakTTSError
from audio.g2p import pronounce
from audio.types import SILENCE
from tools.eval_align import Seg as TruthSeg
from tools.eval_align import boundary_errors, read_events

ARPABET = {
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
    "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
}  # fmt: skip


def f0_hz(x: np.ndarray, sr: int) -> float:
    """Median pitch of the voiced frames (probabilistic YIN, robust to octave errors)."""
    import librosa

    f0, voiced, _ = librosa.pyin(x.astype(np.float32), fmin=60, fmax=400, sr=sr, frame_length=2048)
    return float(np.nanmedian(f0[voiced]))


def test_timings_equal_the_recorded_espeak_events():
    gt = media("groundtruth")
    truth, truth_words = read_events(gt / "tts_espeak_en-us_s1.events.tsv")
    sp = EspeakTTS("en-us").synthesize_sentence((gt / "tts_s1.txt").read_text().strip())
    assert sp.sample_rate == 22050
    assert sp.duration_s == pytest.approx(truth[-1].end, abs=0.002)
    errs, label_error = boundary_errors(truth, [TruthSeg(p.start_s, p.end_s, p.symbol) for p in sp.phones])
    assert len(errs) >= 30 and np.max(np.abs(errs)) < 0.001 and label_error < 0.05
    assert [w.text for w in sp.words] == [w.label for w in truth_words]


def test_timeline_contract_and_stress():
    sp = EspeakTTS("en-us").synthesize("Hello there, fire-fighter! I am fine.")
    assert sp.phones[0].start_s == 0.0 and sp.phones[-1].end_s == pytest.approx(sp.duration_s)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(sp.phones, sp.phones[1:]))
    assert {p.symbol for p in sp.phones} <= ARPABET | {SILENCE}
    assert [w.text for w in sp.words] == ["Hello", "there", "fire-fighter", "I", "am", "fine"]
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(sp.words, sp.words[1:]))
    hello = [p for p in sp.phones if sp.words[0].start_s <= p.start_s < sp.words[0].end_s]
    assert [p.symbol for p in hello] == ["HH", "AH", "L", "OW"] and hello[-1].stress == 1


def test_streaming_by_sentence():
    chunks = list(EspeakTTS("en-us").stream("One sentence here. And another one! A third?"))
    assert [c.index for c in chunks] == [0, 1, 2] and [c.is_last for c in chunks] == [False, False, True]
    assert all(c.speech.duration_s > 0.3 for c in chunks)


def test_voices_variants_and_parameters():
    base = EspeakTTS("en-us").synthesize("I am very happy to meet you today.")
    female = EspeakTTS("en-us", EspeakParams(variant="f3")).synthesize("I am very happy to meet you today.")
    assert f0_hz(female.samples, 22050) > 1.5 * f0_hz(base.samples, 22050)
    slow = EspeakTTS("en-us+m3", EspeakParams(rate=0.7)).synthesize("I am very happy to meet you today.")
    assert slow.duration_s > 1.25 * base.duration_s
    # a language code that is not a voice name resolves to the voice file ("en-gb" -> "gmw/en")
    gb = EspeakTTS("en-gb+f2")
    assert gb.voice_name.endswith("+f2")
    de = EspeakTTS("de").synthesize("Guten Morgen, wie geht es dir?")
    assert {p.symbol for p in de.phones} <= ARPABET | {SILENCE} and len(de.words) == 6
    with pytest.raises(EspeakTTSError, match="xx-nowhere"):
        EspeakTTS("xx-nowhere")


def test_voice_and_variant_lists():
    voices = list_voices()
    assert len(voices) > 100 and any("en-us" in v.languages for v in voices)
    variants = {v.id: v for v in list_variants()}
    assert len(variants) > 50 and variants["f3"].gender == "female" and variants["klatt"].klatt


def test_g2p_for_unknown_words_numbers_and_stress():
    assert [s for s, _ in pronounce("dashwood")] == ["D", "AE", "SH", "W", "UH", "D"]
    assert pronounce("dashwood")[1] == ("AE", 1)
    assert [s for s, _ in pronounce("10")] == ["T", "EH", "N"]
    assert all(s in ARPABET for s, _ in pronounce("zorblaxian"))
    assert text_to_ipa("Hello world")[0].replace("ˈ", "").startswith("h")
