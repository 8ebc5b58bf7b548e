"""Streaming TTS: short first piece, pieces that grow no faster than playback, Piper's first chunk fast;
and the audio benchmark/evaluation commands run end to end on the test media."""

from __future__ import annotations

import re
import time

import numpy as np
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
    assert ttfa < 1.0  # the target is 0.5 s; a loose bound for a shared machine
    sp = first.speech
    assert sp.phones[-1].end_s == pytest.approx(sp.duration_s) and [w.text for w in sp.words] == ["Good", "morning"]


def test_alignment_benchmark_runs_on_half_a_minute():
    from benchmarks.bench_audio import bench_align

    r = bench_align(media(), 0.5)
    assert r["forced"] == 1.0 and r["audio_s"] >= 30 and r["rtf"] > 3.0


def test_evaluation_command_prints_figures(capsys: pytest.CaptureFixture[str]):
    from tools.eval_align import main

    assert main(["--media", str(media())]) == 0
    out = capsys.readouterr().out
    both = next(line for line in out.splitlines() if "forced   both" in line)
    median, p90 = (float(x) for x in re.findall(r"(?:median|p90)\s+([\d.]+) ms", both))
    assert median <= 20 and p90 <= 50
    words = next(line for line in out.splitlines() if "word boundaries" in line)
    assert float(re.search(r"median\s+([\d.]+) ms", words).group(1)) <= 50


def test_piper_streams_within_a_sentence_and_the_pieces_join_to_the_whole():
    """The decoder runs window by window: the first piece comes well before the whole sentence is
    decoded, and the pieces joined are the sentence's audio and phones (noise off, so both runs agree)."""
    from audio.piper_tts import PiperParams, PiperTTS

    tts = PiperTTS(params=PiperParams(noise_scale=0.0, noise_w_scale=0.0))
    text = "I can tell you about the weather, the news, or anything else you would like to hear today."
    whole = tts.synthesize_sentence(text)
    pieces = list(tts.synthesize_stream(text))
    assert len(pieces) >= 3
    assert pieces[0].duration_s < 0.7 < whole.duration_s
    for a, b in zip(pieces, pieces[1:]):
        assert b.duration_s <= 2.2 * a.duration_s  # windows double
    joined = np.concatenate([p.samples for p in pieces])
    assert len(joined) == len(whole.samples)
    np.testing.assert_allclose(joined, whole.samples, atol=1e-4)
    # phones: the same timeline, cut at the seams
    t, cut = 0.0, []
    for p in pieces:
        assert p.phones[0].start_s == 0.0 and p.phones[-1].end_s == pytest.approx(p.duration_s)
        cut += [(q.start_s + t, q.end_s + t, q.symbol) for q in p.phones]
        t += p.duration_s
    merged: list[tuple[float, float, str]] = []
    for s, e, sym in cut:
        if merged and merged[-1][2] == sym and abs(merged[-1][1] - s) < 1e-6:
            merged[-1] = (merged[-1][0], e, sym)
        else:
            merged.append((s, e, sym))
    assert [m[2] for m in merged] == [p.symbol for p in whole.phones]
    np.testing.assert_allclose([m[1] for m in merged], [p.end_s for p in whole.phones], atol=1e-6)
    assert [w.text for w in pieces[0].words][:3] == ["I", "can", "tell"]


def test_a_voice_that_is_not_a_vits_graph_is_not_streamable(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from audio.piper_stream import NotStreamable, SplitVoice

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g", [x], [y]))
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="no decoder"):
        SplitVoice(path, 1)
    assert issubclass(NotStreamable, RuntimeError)
