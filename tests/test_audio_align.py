"""audio.align: pocketsphinx forced alignment, phone recognition and the energy fallback, on real media."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from conftest import media

from audio.align import Aligner, AlignError, AlignResult, align, transcript_words
from audio.io import AudioError, load_audio, resample
from audio.types import SILENCE, Speech
from tools.eval_align import Seg as TruthSeg
from tools.eval_align import boundary_errors, read_events, read_reference_tsv, word_errors

INVENTORY = {
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
    "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
    SILENCE,
}  # fmt: skip


@pytest.fixture(scope="module")
def aligner() -> Aligner:
    return Aligner()


def _check_timeline(sp: Speech) -> None:
    """The stage contract: contiguous phones from 0 to the end, one inventory, words inside the audio."""
    assert sp.phones[0].start_s == 0.0
    assert sp.phones[-1].end_s == pytest.approx(sp.duration_s, abs=1e-9)
    for a, b in zip(sp.phones, sp.phones[1:]):
        assert a.end_s == pytest.approx(b.start_s, abs=1e-9)
    assert all(p.end_s > p.start_s for p in sp.phones)
    assert {p.symbol for p in sp.phones} <= INVENTORY
    assert all(0.0 <= w.start_s < w.end_s <= sp.duration_s + 1e-9 for w in sp.words)


def _segs(sp: Speech) -> list[TruthSeg]:
    return [TruthSeg(p.start_s, p.end_s, p.symbol) for p in sp.phones]


def _words(sp: Speech) -> list[TruthSeg]:
    return [TruthSeg(w.start_s, w.end_s, w.text) for w in sp.words]


def _clip(name: str) -> tuple[Path, str]:
    return media("speech", f"{name}.wav"), media("speech", f"{name}.txt").read_text()


def test_phone_boundaries_match_exact_espeak_labels(aligner: Aligner):
    gt = media("groundtruth")
    truth, truth_words = read_events(gt / "tts_espeak_en-us_s1.events.tsv")
    res = aligner.align_file(gt / "tts_espeak_en-us_s1.wav", (gt / "tts_s1.txt").read_text())
    assert res.method == "forced"
    _check_timeline(res.speech)
    errs, label_error = boundary_errors(truth, _segs(res.speech))
    assert len(errs) >= 25 and label_error < 0.3
    assert np.median(np.abs(errs)) <= 0.020 and np.percentile(np.abs(errs), 90) <= 0.050
    # word starts too ("The quick brown fox ..."): espeak's word event precedes its first phone slightly
    starts = [w.start_s for w in res.speech.words]
    assert [w.text for w in res.speech.words] == transcript_words((gt / "tts_s1.txt").read_text())
    assert np.median(np.abs(np.array(starts) - [w.start for w in truth_words])) < 0.03


def test_real_clip_words_agree_with_reference(aligner: Aligner):
    wav, text = _clip("librivox_ss01_0870")
    res = aligner.align_file(wav, text)
    ref_phones, ref_words = read_reference_tsv(media("groundtruth", "align", "librivox_ss01_0870.phones.tsv"))
    _check_timeline(res.speech)
    assert [w.text for w in res.speech.words] == text.split()
    errs = word_errors(ref_words, _words(res.speech))
    assert len(errs) == 2 * len(ref_words) and np.median(errs) <= 0.05
    # stress comes from espeak-ng's lexicon: "dashwood" is stressed on its first vowel
    dash = next(w for w in res.speech.words if w.text == "dashwood")
    vowels = [p for p in res.speech.phones if dash.start_s <= p.start_s < dash.end_s and p.symbol in {"AE", "UH"}]
    assert vowels[0].stress == 1


def test_out_of_vocabulary_words_use_espeak_pronunciations(aligner: Aligner):
    from audio.espeak import sample_rate, synthesize

    text = "The zorblaxian quibbitzers flomped gently."
    blocks, events = synthesize(text, "en-us")
    x = np.concatenate(blocks).astype(np.float32) / 32768.0
    sr = sample_rate()
    res = aligner.align(x, sr, text)
    assert res.method == "forced"
    assert {w.lower() for w in res.oov} >= {"zorblaxian", "quibbitzers", "flomped"}
    truth = [e.sample / sr for e in events if e.kind == "word"]
    got = [w.start_s for w in res.speech.words]
    assert len(got) == len(truth) == 5
    # espeak's word event comes a little before the first phone's sound
    assert max(abs(a - b) for a, b in zip(got, truth)) < 0.08


def test_without_a_transcript_the_words_are_recognised_and_aligned(aligner: Aligner):
    wav, text = _clip("goforward")
    res = aligner.align_file(wav)
    assert res.method == "recognised"
    assert res.speech.text == "go forward ten meters" and "recognised as" in res.notes[-1]
    _check_timeline(res.speech)
    # the same phones, at the same times, as with the transcript
    forced = aligner.align_file(wav, text).speech
    assert [p.symbol for p in res.speech.phones] == [p.symbol for p in forced.phones]
    assert max(abs(a.start_s - b.start_s) for a, b in zip(res.speech.phones, forced.phones)) < 0.02


def test_mouth_shapes_without_a_transcript_follow_the_words_on_real_recordings(aligner: Aligner):
    # per 10 ms, the viseme class of the phone (closed lips, f/v, rounded, open vowel...) recognised without
    # the transcript against the transcript's alignment: recognising words beats recognising phonemes
    shapes = {"closed": "P B M", "f/v": "F V", "rounded": "UW OW W UH OY AW R SH ZH CH JH",
              "open": "AA AE AH AO AY EH ER EY", "spread": "IY IH Y", "pause": SILENCE}  # fmt: skip
    shape_of = {p: k for k, v in shapes.items() for p in v.split()}

    def classes(res: AlignResult, n: int) -> np.ndarray:
        out = np.full(n, "pause", object)
        for p in res.speech.phones:
            out[int(round(p.start_s * 100)) : int(round(p.end_s * 100))] = shape_of.get(p.symbol, "other")
        return out

    agree: dict[str, list[float]] = {"recognised": [], "phonetic": []}
    for name in ("cards_002", "jfk_inaugural_1961", "librivox_ss01_0880"):
        wav, text = _clip(name)
        x, sr = load_audio(wav)
        n = int(len(x) / sr * 100)
        ref = classes(aligner.align(x, sr, text), n)
        for method in agree:
            agree[method].append(float((classes(aligner.align(x, sr, None, method=method), n) == ref).mean()))
    # recognised words give the transcript's mouth shapes far more often than recognised phonemes
    assert min(agree["recognised"]) > 0.85, agree
    assert np.mean(agree["recognised"]) > np.mean(agree["phonetic"]) + 0.15, agree


def test_phonetic_mode_without_transcript(aligner: Aligner):
    wav, _ = _clip("goforward")
    res = aligner.align_file(wav, method="phonetic")
    assert res.method == "phonetic" and res.speech.words == ()
    sp = res.speech
    _check_timeline(sp)
    voiced = [p for p in sp.phones if p.symbol != SILENCE]
    assert len(voiced) >= 8
    # speech starts ~0.47 s in ("go"): recognised phones begin near there, silence before
    assert 0.3 < voiced[0].start_s < 0.6
    assert sp.phones[0].symbol == SILENCE


def test_silence_only_audio(aligner: Aligner):
    x = np.zeros(32000, np.float32)
    res = aligner.align(x, 16000, "hello world")
    assert res.method == "silence"
    assert [p.symbol for p in res.speech.phones] == [SILENCE]
    assert res.speech.phones[0].end_s == 2.0
    assert "no speech" in res.notes[0]
    quiet_noise = (np.random.default_rng(0).standard_normal(16000) * 1e-4).astype(np.float32)
    assert aligner.align(quiet_noise, 16000).method == "silence"


def test_48k_stereo_and_8k_files(tmp_path: Path, aligner: Aligner):
    wav, text = _clip("goforward")
    x, sr = load_audio(wav)
    base = aligner.align(x, sr, text).speech
    # 48 kHz stereo, left and right slightly different
    x48 = resample(x, sr, 48000)
    stereo = tmp_path / "stereo48k.flac"
    _write(stereo, x48, 48000, x48 * 0.8)
    s48 = aligner.align_file(stereo, text)
    assert s48.speech.sample_rate == 48000 and s48.method == "forced"
    assert np.max(np.abs(np.array([w.start_s for w in s48.speech.words]) - [w.start_s for w in base.words])) < 0.03
    # 8 kHz telephone band: still aligned, within 50 ms of the 16 kHz result
    low = tmp_path / "phone8k.wav"
    _write(low, resample(x, sr, 8000), 8000)
    s8 = aligner.align_file(low, text)
    assert s8.speech.sample_rate == 8000 and s8.method == "forced"
    _check_timeline(s8.speech)
    errs = word_errors(_words(base), _words(s8.speech))
    assert np.median(errs) < 0.05


def _write(path: Path, left: np.ndarray, rate: int, right: np.ndarray | None = None) -> None:
    layout = "stereo" if right is not None else "mono"
    planes = np.stack([left, right] if right is not None else [left]).astype(np.float32)
    codec = "flac" if path.suffix == ".flac" else "pcm_s16le"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate, layout=layout)
        fr = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
        fr.sample_rate = rate
        for f in av.AudioResampler(format=s.codec_context.format.name, layout=layout, rate=rate).resample(fr):
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)


def test_mismatched_transcript_falls_back_or_raises(aligner: Aligner):
    wav, _ = _clip("librivox_ss01_0870")
    _, other = _clip("librivox_ss01_0890")
    res = aligner.align_file(wav, other)
    assert res.method == "phonetic" and "does not match" in res.notes[0]
    _check_timeline(res.speech)
    with pytest.raises(AlignError, match="does not match|could not be aligned"):
        aligner.align_file(wav, other, method="forced")
    # far more words than the audio can hold
    res = aligner.align_file(media("speech", "cards_001.wav"), "hello " * 200)
    assert res.method == "phonetic" and res.notes


def test_corrupt_file_is_an_audio_error(tmp_path: Path, aligner: Aligner):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEfmt " + b"\x01" * 200)
    with pytest.raises(AudioError, match="broken.wav"):
        aligner.align_file(bad, "hello")


def test_long_audio_is_aligned_in_windows():
    """~38 s of concatenated clips with 10 s windows: every word found, same times as clip by clip."""
    names = ["cards_001", "goforward", "librivox_ss01_0880", "jfk_inaugural_1961", "librivox_ss01_0890",
             "forever_input2", "cards_002", "librivox_ss01_0870"]  # fmt: skip
    small = Aligner()
    windowed = Aligner(window_s=10.0, single_pass_s=12.0)
    parts, texts, expected = [], [], []
    offset = 0.0
    for n in names:
        wav, text = _clip(n)
        x, _ = load_audio(wav, sample_rate=16000)
        sp = small.align(x, 16000, text).speech
        expected += [(w.start_s + offset, w.text) for w in sp.words]
        parts.append(x)
        texts.append(text)
        offset += len(x) / 16000
    res = windowed.align(np.concatenate(parts), 16000, " ".join(texts))
    assert res.method == "forced"
    _check_timeline(res.speech)
    got = res.speech.words
    assert [w.text for w in got] == [t for _, t in expected]
    diffs = np.abs(np.array([w.start_s for w in got]) - [t for t, _ in expected])
    assert np.median(diffs) < 0.02 and np.mean(diffs < 0.1) > 0.9


def test_energy_fallback_follows_loudness(aligner: Aligner):
    wav, _ = _clip("goforward")
    x, sr = load_audio(wav)
    res = aligner.align(x, sr, None, method="energy")
    assert res.method == "energy"
    _check_timeline(res.speech)
    sp = res.speech
    assert sp.phones[0].symbol == SILENCE and sp.phones[0].end_s > 0.3  # quiet lead-in
    vowels = [p for p in sp.phones if p.symbol in {"AA", "AH"}]
    assert len(vowels) >= 3  # go / for-ward / ten / me-ters


def test_odd_inputs_give_results_and_leave_the_aligner_usable(aligner: Aligner):
    rng = np.random.default_rng(1)
    tiny = aligner.align(np.array([0.5], np.float32), 44100, "hello")
    assert tiny.method == "energy" and "too short" in tiny.notes[0]
    noise = np.clip(rng.standard_normal(24000) * 0.5, -1, 1).astype(np.float32)
    for text in (None, "hello world"):
        res = aligner.align(noise, 8000, text)
        assert res.method in ("phonetic", "energy")
        _check_timeline(res.speech)
    nan = aligner.align(np.full(16000, np.nan, np.float32), 16000, "hello")
    assert nan.method == "silence"
    wav, text = _clip("cards_001")
    assert aligner.align_file(wav, text).method == "forced"  # nothing left half-decoded


def test_module_level_align_and_bad_input():
    wav, text = _clip("cards_001")
    x, sr = load_audio(wav)
    sp = align(x, sr, text)
    assert [w.text for w in sp.words] == ["ten", "of", "clubs"]
    with pytest.raises(AlignError, match="mono"):
        Aligner().align(np.zeros((2, 100), np.float32), 16000)
    with pytest.raises(AlignError, match="zero samples"):
        Aligner().align(np.zeros(0, np.float32), 16000)
    assert transcript_words("Cold-hearted, isn't it? 10 Mr. O’Brien!") == [
        "Cold", "hearted", "isn't", "it", "10", "Mr", "O'Brien",
    ]  # fmt: skip
