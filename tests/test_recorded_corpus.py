"""Recorded speech with phone labels (tools.recorded_corpus): labels read right, a held-out split that training
never draws from."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from audio.io import to_pcm16
from tools.recorded_corpus import CorpusError, is_held_out, load, read_labels, recordings

RU = "russian/msu_ru_nsh_clunits"


def test_labels_map_to_arpabet_by_what_the_lips_do() -> None:
    text = "#\n0.30 125 pau\n0.34 125 pau\n0.40 125 mm\n0.52 125 aa\n0.60 125 rr\n0.66 125 pp\n0.90 125 pau\n"
    phones = read_labels(text, _ru_map())
    assert [p.symbol for p in phones] == ["SIL", "M", "AA", "L", "P", "SIL"]
    assert phones[0].start_s == 0 and phones[0].end_s == pytest.approx(0.34)  # neighbouring pauses merge
    assert all(a.end_s == b.start_s for a, b in zip(phones, phones[1:], strict=False))
    with pytest.raises(CorpusError, match="unknown phone 'qq'"):
        read_labels("#\n0.1 125 qq\n", _ru_map())


def test_a_corpus_laid_out_like_a_clunits_voice_is_found_and_split(tmp_path: Path) -> None:
    folder = tmp_path / RU
    (folder / "lab").mkdir(parents=True)
    (folder / "wav").mkdir()
    names = [f"ru_{i:04d}" for i in range(1, 81)]
    sr = 16000
    for name in names[:3]:
        write_wav(folder / "wav" / f"{name}.wav", np.zeros(sr, np.float32), sr)
        (folder / "lab" / f"{name}.lab").write_text("#\n0.3 125 pau\n0.5 125 b\n0.8 125 a\n1.2 125 pau\n")
    (folder / "lab" / "ru_0999.lab").write_text("#\n0.3 125 pau\n")  # no recording beside it: skipped
    recs = recordings((tmp_path,))
    assert [r.name for r in recs] == names[:3] and {r.lang for r in recs} == {"ru"}
    speech = load(recs[0])
    # the labels run past the audio's 1 s: the phones stop at its end
    assert speech.phones[-1].end_s == pytest.approx(1.0) and [p.symbol for p in speech.phones] == [
        "SIL",
        "B",
        "AH",
        "SIL",
    ]
    # about one sentence in eight is held out, always the same ones
    held = [n for n in names if is_held_out(n)]
    assert 3 <= len(held) <= 20 and held == [n for n in names if is_held_out(n)]


def test_training_data_never_draws_a_held_out_recording(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tools.lipsync_data as data
    from tools import recorded_corpus

    folder = tmp_path / RU
    (folder / "lab").mkdir(parents=True)
    (folder / "wav").mkdir()
    sr = 16000
    names = [f"ru_{i:04d}" for i in range(1, 41)]
    for name in names:
        write_wav(folder / "wav" / f"{name}.wav", np.zeros(sr // 2, np.float32), sr)
        (folder / "lab" / f"{name}.lab").write_text("#\n0.2 125 pau\n0.3 125 m\n0.5 125 pau\n")
    monkeypatch.setattr(data, "_CORPUS", [])
    monkeypatch.setattr(data, "recordings", lambda: recorded_corpus.recordings((tmp_path,)))
    rng = np.random.default_rng(0)
    drawn = set()
    for _ in range(200):
        u = data.corpus_utterance(rng)
        assert u is not None and u.meta["engine"] == "corpus"
        drawn.add(str(u.meta["text"]))
    held = {n for n in names if is_held_out(n)}
    assert held and not drawn & held and len(drawn) == len(names) - len(held)


def write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(to_pcm16(samples))


def _ru_map() -> dict[str, str]:
    from tools.recorded_corpus import CORPORA

    return CORPORA[RU][1]


def test_italian_and_finnish_festival_symbols_read_as_arpabet() -> None:
    from tools.festival_speech import read_segments

    segs = "#\n0.10 100 #\n0.15 100 ##\n0.20 100 b:\n0.30 100 a1\n0.35 100 tS\n0.42 100 @\n0.50 100 m\n0.60 100 #\n"
    phones = read_segments(segs, 0.7, "it")
    # stress digits and length marks go; the voice's two silences before speech are one pause
    assert [p.symbol for p in phones] == ["SIL", "B", "AA", "CH", "AE", "M", "SIL"]
    assert phones[0].end_s == pytest.approx(0.15) and phones[-1].end_s == pytest.approx(0.7)
