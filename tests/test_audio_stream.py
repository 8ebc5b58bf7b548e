"""Streaming TTS: short first piece, pieces that grow no faster than playback, Piper's first chunk fast;
and the audio benchmark/evaluation commands run end to end on the test media."""

from __future__ import annotations

import re
import time

import pytest
from conftest import media

from audio.text import split_sentences

PARAGRAPH = (
    "Good morning, and thank you all for coming to the opening of our new community garden today. "
    "We planted more than two hundred trees this spring. Please enjoy the tour."
)


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def test_first_piece_is_short_and_pieces_grow_at_most_twofold():
    pieces = split_sentences(PARAGRAPH, first_max_chars=60)
    assert pieces[0] == "Good morning,"
    assert _norm(" ".join(pieces)) == _norm(PARAGRAPH)
    for prev, cur in zip(pieces, pieces[1:]):
        assert len(cur) <= max(2 * len(prev), 30) or not re.search(r"[,;:]\s", cur)
    # without the option: plain sentences, as before (the server relies on it)
    assert split_sentences(PARAGRAPH) == [
        "Good morning, and thank you all for coming to the opening of our new community garden today.",
        "We planted more than two hundred trees this spring.",
        "Please enjoy the tour.",
    ]
    long_first = "The committee met on Tuesday morning to review the plans for the new library. Then it rained."
    assert split_sentences(long_first, first_max_chars=60)[0].endswith("library.")  # no cut mid-phrase


def test_piper_first_chunk_arrives_fast():
    from audio.piper_tts import PiperTTS

    tts = PiperTTS()
    next(iter(tts.stream("Warm up.")))
    t0 = time.perf_counter()
    it = iter(tts.stream(PARAGRAPH))
    first = next(it)
    ttfa = time.perf_counter() - t0
    rest = list(it)
    assert first.index == 0 and first.source_text == "Good morning," and rest[-1].is_last
    assert ttfa < 1.0  # 0.13-0.3 s measured here on a shared 2-core machine; the target is 0.5 s
    sp = first.speech
    assert sp.phones[-1].end_s == pytest.approx(sp.duration_s) and [w.text for w in sp.words] == ["Good", "morning"]


def test_alignment_benchmark_runs_on_half_a_minute():
    from audio.bench_audio import bench_align

    r = bench_align(media(), 0.5)
    assert r["forced"] == 1.0 and r["audio_s"] >= 30 and r["rtf"] > 3.0


def test_evaluation_command_prints_figures(capsys: pytest.CaptureFixture[str]):
    from audio.eval_align import main

    assert main(["--media", str(media())]) == 0
    out = capsys.readouterr().out
    both = next(line for line in out.splitlines() if "forced   both" in line)
    median, p90 = (float(x) for x in re.findall(r"(?:median|p90)\s+([\d.]+) ms", both))
    assert median <= 20 and p90 <= 50
    words = next(line for line in out.splitlines() if "word boundaries" in line)
    assert float(re.search(r"median\s+([\d.]+) ms", words).group(1)) <= 50
