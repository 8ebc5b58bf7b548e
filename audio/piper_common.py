"""What Piper's whole-sentence path (``audio.piper_tts``) and its streamed path (``audio.piper_stream``)
share: the error type, CPU ONNX sessions, and phone timelines from Piper's per-phoneme sample counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from audio.phonemes import VOWELS, ipa_units
from audio.types import SILENCE, Phone, Word

# Word-break tokens shorter than this are coarticulation, not a pause: their time is split
# between the neighbouring phones.
_MIN_PAUSE_S = 0.09


class TTSError(RuntimeError):
    """Synthesis failed (voice missing, model error, nothing produced)."""


def cpu_session(model: Any, threads: int | None) -> Any:
    """An onnxruntime CPU session of an ``onnx`` model with ``threads`` intra-op threads that do not spin
    (onnxruntime's default spins a thread per core, which starves a renderer running beside it; see
    docs/audio.md)."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _alignments_to_timeline(alignments: list[Any], sr: int, sample_offset: int) -> tuple[list[Phone], list[Word]]:
    """Turn Piper's per-phoneme sample counts into ARPAbet phones and word spans."""
    tokens = [a.phoneme for a in alignments]
    counts = [int(a.num_samples) for a in alignments]
    # Piper wraps each sentence in BOS "^" and EOS "$" tokens: both are silence.
    bounds = np.concatenate([[0], np.cumsum(counts)]) + sample_offset
    units = ipa_units(tokens)
    segs: list[list[Any]] = []  # [start_sample, end_sample, symbol, stress]
    pending_stress = 0
    pending_start: int | None = None
    word_spans: list[list[int]] = []
    in_word = False
    for unit, idx in units:
        s, e = int(bounds[idx[0]]), int(bounds[idx[-1] + 1])
        tok0 = tokens[idx[0]]
        if tok0 in ("^", "$", "_"):
            segs.append([s, e, SILENCE, 0])
            in_word = False
            continue
        if unit.startswith("'"):
            pending_stress = int(unit[1])
            pending_start = s if pending_start is None else pending_start
            continue
        if unit == ":":
            if segs:
                segs[-1][1] = e
            continue
        if unit == "|":
            in_word = False
            dur = (e - s) / sr
            if dur >= _MIN_PAUSE_S:
                segs.append([s, e, SILENCE, 0])
            elif segs:
                mid = (s + e) // 2
                segs[-1][1] = mid
                pending_start = mid if pending_start is None else pending_start
            continue
        if unit == ",":
            segs.append([s if pending_start is None else pending_start, e, SILENCE, 0])
            pending_start = None
            in_word = False
            continue
        start = s if pending_start is None else pending_start
        stress = pending_stress if unit in VOWELS else 0
        sym = unit if unit != "?" else "AH"
        segs.append([start, e, sym, stress])
        if unit in VOWELS:
            pending_stress = 0
        pending_start = None
        if not in_word:
            word_spans.append([start, e])
            in_word = True
        else:
            word_spans[-1][1] = e
    # make the timeline contiguous
    for a, b in zip(segs, segs[1:]):
        if b[0] != a[1]:
            b[0] = a[1]
    phones = [Phone(a[0] / sr, a[1] / sr, a[2], a[3]) for a in segs if a[1] > a[0]]
    words = [Word(s / sr, e / sr, "") for s, e in word_spans]
    return phones, words


def _merge_silences(phones: list[Phone]) -> list[Phone]:
    out: list[Phone] = []
    for p in phones:
        if out and p.symbol == SILENCE and out[-1].symbol == SILENCE:
            out[-1] = Phone(out[-1].start_s, p.end_s, SILENCE)
        else:
            out.append(p)
    return out
