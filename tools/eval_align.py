"""Accuracy of ``audio.align`` against exact and reference timings.

``python -m tools.eval_align [--media DIR]`` prints:

* phone-boundary error on synthetic speech whose labels are exact: the MBROLA us1 ``.pho`` file (SAMPA
  phones with durations in ms) and the espeak-ng phoneme events (``.events.tsv``), both saying
  ``tts_s1.txt``; forced alignment with the transcript and phone recognition without it;
* word-boundary agreement on the real recordings ``speech/*.wav`` with the reference alignments in
  ``groundtruth/align/*.phones.tsv`` (pocketsphinx 5.1.1 forced alignment, good to a few tens of ms).

Truth and result phone sequences are matched by edit distance (phones of different symbol may pair, e.g.
when the dictionary and the synthesizer pronounce a word differently); the error of a phone is
|aligned start - true start| for each paired phone that starts a new sound (the first phone at t=0 excluded).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.align import Aligner, AlignError, AlignResult
from audio.io import load_audio
from audio.types import SILENCE

# MBROLA us1 SAMPA -> ARPAbet
SAMPA_TO_ARPABET = {
    "_": SILENCE, "#": SILENCE,
    "i": "IY", "I": "IH", "E": "EH", "{": "AE", "A": "AA", "O": "AO", "U": "UH", "u": "UW", "V": "AH",
    "@": "AH", "r=": "ER", "3`": "ER", "@`": "ER", "EI": "EY", "aI": "AY", "OI": "OY", "@U": "OW", "oU": "OW",
    "aU": "AW", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V", "T": "TH",
    "D": "DH", "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "tS": "CH", "dZ": "JH", "m": "M",
    "n": "N", "N": "NG", "l": "L", "r": "R", "w": "W", "j": "Y", "4": "D", "?": "T",
}  # fmt: skip
# espeak-ng English phoneme mnemonics (digits/# variants stripped first) -> ARPAbet
ESPEAK_TO_ARPABET = {
    "_": SILENCE, "_:": SILENCE, "": SILENCE,
    "@": "AH", "V": "AH", "3": "ER", "3:": "ER", "@L": "L", "0": "AA", "a": "AE", "aa": "AA", "A:": "AA",
    "A@": "AA", "aI": "AY", "aI@": "AY", "aU": "AW", "E": "EH", "e@": "EH", "eI": "EY", "i": "IY", "i:": "IY",
    "i@": "IY", "I": "IH", "O:": "AO", "O": "AO", "O@": "AO", "OI": "OY", "oU": "OW", "U": "UH", "U@": "UH",
    "u:": "UW", "D": "DH", "T": "TH", "S": "SH", "Z": "ZH", "tS": "CH", "dZ": "JH", "N": "NG", "j": "Y",
    "h": "HH", "r": "R", "r-": "R", "l": "L", "t": "T", "d": "D", "p": "P", "b": "B", "k": "K", "g": "G",
    "f": "F", "v": "V", "s": "S", "z": "Z", "m": "M", "n": "N", "w": "W",
}  # fmt: skip


@dataclass(frozen=True)
class Seg:
    start: float
    end: float
    label: str


def media_dir(arg: str | None = None) -> Path:
    """The test media folder: ``--media``, ``$TALKER_MEDIA`` or ``../shared/media`` next to the project."""
    if arg:
        return Path(arg)
    env = os.environ.get("TALKER_MEDIA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "media"


def read_pho(path: Path) -> list[Seg]:
    """MBROLA .pho: one phone per line (SAMPA, duration ms, pitch targets); ';' comments."""
    out: list[Seg] = []
    t = 0.0
    for line in path.read_text().splitlines():
        parts = line.split(";", 1)[0].split()
        if len(parts) < 2:
            continue
        dur = float(parts[1]) / 1000.0
        out.append(Seg(t, t + dur, SAMPA_TO_ARPABET.get(parts[0], parts[0])))
        t += dur
    return _merge_sil(out)


def read_events(path: Path) -> tuple[list[Seg], list[Seg]]:
    """espeak-ng events tsv (start_ms, PHONE|WORD, label, sample): phones and words with exact starts."""
    sr = None
    dur_ms = None
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            for tok in line[1:].split():
                k, _, v = tok.partition("=")
                if k == "sample_rate":
                    sr = float(v)
                elif k == "duration_ms":
                    dur_ms = float(v)
            continue
        parts = line.split("\t")
        if len(parts) >= 4:
            rows.append((parts[1], parts[2], int(parts[3])))
    if sr is None or dur_ms is None:
        raise ValueError(f"{path}: header with sample_rate and duration_ms missing")
    end = dur_ms / 1000.0
    phones: list[Seg] = []
    prow = [(lab, smp / sr) for kind, lab, smp in rows if kind == "PHONE"]
    if prow and prow[0][1] > 0:
        phones.append(Seg(0.0, prow[0][1], SILENCE))
    for i, (lab, t) in enumerate(prow):
        nxt = prow[i + 1][1] if i + 1 < len(prow) else end
        if nxt > t:
            phones.append(Seg(t, nxt, _espeak_symbol(lab)))
    wrow = [(lab, smp / sr) for kind, lab, smp in rows if kind == "WORD"]
    words = [Seg(t, wrow[i + 1][1] if i + 1 < len(wrow) else end, lab) for i, (lab, t) in enumerate(wrow)]
    return _merge_sil(phones), words


def _espeak_symbol(label: str) -> str:
    lab = label.strip()
    if lab in ESPEAK_TO_ARPABET:
        return ESPEAK_TO_ARPABET[lab]
    base = lab.rstrip("0123456789#").replace(";", "")
    return ESPEAK_TO_ARPABET.get(base, base.upper())


def read_reference_tsv(path: Path) -> tuple[list[Seg], list[Seg]]:
    """groundtruth/align/*.phones.tsv: (phones, words); fillers (<s>, <sil>, </s>) become SIL / no word."""
    phones: list[Seg] = []
    words: list[Seg] = []
    prev_word = None
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        a, b, ph, w = line.split("\t")[:4]
        s, e = float(a), float(b)
        filler = w.startswith("<") or w.startswith("[")
        phones.append(Seg(s, e, SILENCE if filler or ph == "SIL" else ph))
        word = w.split("(")[0]
        if filler:
            prev_word = None
            continue
        if words and prev_word == w and abs(words[-1].end - s) < 1e-6:
            words[-1] = Seg(words[-1].start, e, word)
        else:
            words.append(Seg(s, e, word))
        prev_word = w
    return _merge_sil(phones), words


def _merge_sil(segs: list[Seg]) -> list[Seg]:
    out: list[Seg] = []
    for s in segs:
        if out and s.label == SILENCE and out[-1].label == SILENCE:
            out[-1] = Seg(out[-1].start, s.end, SILENCE)
        else:
            out.append(s)
    return out


def pair_sequences(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs of an edit-distance alignment of two label sequences (matches and substitutions)."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = 0.0 if ref[i - 1] == hyp[j - 1] else 1.0
            cost[i, j] = min(cost[i - 1, j - 1] + sub, cost[i - 1, j] + 1.0, cost[i, j - 1] + 1.0)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        sub = 0.0 if ref[i - 1] == hyp[j - 1] else 1.0
        if cost[i, j] == cost[i - 1, j - 1] + sub:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1.0:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def boundary_errors(ref: list[Seg], hyp: list[Seg]) -> tuple[np.ndarray, float]:
    """Signed start-time errors (hyp - ref, seconds) of paired phones, and the label error rate."""
    pairs = pair_sequences([s.label for s in ref], [s.label for s in hyp])
    errs = [hyp[j].start - ref[i].start for i, j in pairs if ref[i].start > 1e-6]
    n_err = len(ref) + len(hyp) - 2 * len(pairs) + sum(1 for i, j in pairs if ref[i].label != hyp[j].label)
    return np.array(errs), n_err / max(1, len(ref))


def word_errors(ref: list[Seg], hyp: list[Seg]) -> np.ndarray:
    """|start| and |end| differences (seconds) of words paired by text."""
    pairs = pair_sequences([w.label.lower() for w in ref], [w.label.lower() for w in hyp])
    out = []
    for i, j in pairs:
        if ref[i].label.lower() == hyp[j].label.lower():
            out += [abs(hyp[j].start - ref[i].start), abs(hyp[j].end - ref[i].end)]
    return np.array(out)


def _segs(result: AlignResult) -> tuple[list[Seg], list[Seg]]:
    sp = result.speech
    return [Seg(p.start_s, p.end_s, p.symbol) for p in sp.phones], [Seg(w.start_s, w.end_s, w.text) for w in sp.words]


@dataclass(frozen=True)
class Figures:
    """Boundary figures in milliseconds (median/p90 of absolute errors, mean signed error) and counts."""

    name: str
    median_ms: float
    p90_ms: float
    bias_ms: float
    n: int
    label_error: float | None = None


def _figures(name: str, errs: np.ndarray, label_error: float | None = None) -> Figures:
    if len(errs) == 0:
        return Figures(name, float("nan"), float("nan"), float("nan"), 0, label_error)
    a = np.abs(errs) * 1000
    bias = float(np.mean(errs) * 1000)
    return Figures(name, float(np.median(a)), float(np.percentile(a, 90)), bias, len(errs), label_error)


def evaluate_synthetic(media: Path, aligner: Aligner) -> list[Figures]:
    """Phone-boundary figures on the MBROLA and espeak-ng recordings: forced, and without the transcript."""
    gt = media / "groundtruth"
    text = (gt / "tts_s1.txt").read_text().strip()
    truths = {
        "espeak-ng en-us": (gt / "tts_espeak_en-us_s1.wav", read_events(gt / "tts_espeak_en-us_s1.events.tsv")[0]),
    }
    if (gt / "tts_mb-us1_s1.pho").exists():  # the MBROLA recording is in the larger media set only
        truths = {"mbrola us1": (gt / "tts_mb-us1_s1.wav", read_pho(gt / "tts_mb-us1_s1.pho")), **truths}
    out: list[Figures] = []
    all_forced: list[np.ndarray] = []
    for name, (wav, ref) in truths.items():
        samples, sr = load_audio(wav)
        forced = aligner.align(samples, sr, text, method="forced")
        e, ler = boundary_errors(ref, _segs(forced)[0])
        all_forced.append(e)
        out.append(_figures(f"forced   {name}", e, ler))
        # without the transcript: the words recognised and aligned (the default), and phonemes recognised
        for method in ("recognised", "phonetic"):
            try:
                res = aligner.align(samples, sr, None, method=method)
            except AlignError:
                continue  # no words recognised, or none that align: the default falls back to phonemes
            e2, ler2 = boundary_errors(ref, _segs(res)[0])
            out.append(_figures(f"{method} {name}", e2, ler2))
    out.insert(0, _figures("forced   both", np.concatenate(all_forced)))
    return out


def evaluate_clips(media: Path, aligner: Aligner) -> tuple[Figures, Figures, list[tuple[str, Figures]]]:
    """Word-boundary (and phone-boundary) agreement with the reference alignments of the real clips."""
    refs = sorted((media / "groundtruth" / "align").glob("*.phones.tsv"))
    word_all: list[np.ndarray] = []
    phone_all: list[np.ndarray] = []
    per_clip: list[tuple[str, Figures]] = []
    for ref_path in refs:
        stem = ref_path.name[: -len(".phones.tsv")]
        wav = media / "speech" / f"{stem}.wav"
        txt = media / "speech" / f"{stem}.txt"
        if not wav.exists() or not txt.exists():
            continue
        ref_phones, ref_words = read_reference_tsv(ref_path)
        res = aligner.align_file(wav, txt.read_text())
        phones, words = _segs(res)
        we = word_errors(ref_words, words)
        word_all.append(we)
        per_clip.append((stem, _figures(stem, we)))
        if all(p.label != "?" for p in ref_phones):
            pe, _ = boundary_errors(ref_phones, phones)
            phone_all.append(pe)
    words_fig = _figures("word boundaries, real clips", np.concatenate(word_all) if word_all else np.array([]))
    phones_fig = _figures("phone boundaries, real clips", np.concatenate(phone_all) if phone_all else np.array([]))
    return words_fig, phones_fig, per_clip


def _print(f: Figures) -> None:
    ler = "" if f.label_error is None else f"  phone error rate {f.label_error * 100:5.1f}%"
    figs = f"median {f.median_ms:6.1f} ms  p90 {f.p90_ms:6.1f} ms  bias {f.bias_ms:+6.1f} ms"
    print(f"  {f.name:34s} {figs}  n={f.n}{ler}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.eval_align", description=__doc__.split("\n")[0])
    ap.add_argument("--media", help="test media folder (default: $TALKER_MEDIA or ../shared/media)")
    ap.add_argument("--per-clip", action="store_true", help="print word figures for every clip")
    args = ap.parse_args(argv)
    media = media_dir(args.media)
    if not (media / "groundtruth").is_dir():
        print(f"no groundtruth folder under {media}", file=sys.stderr)
        return 2
    aligner = Aligner()
    print("Phone boundaries vs exact synthetic labels (tts_s1: targets median <= 20 ms, p90 <= 50 ms):")
    for f in evaluate_synthetic(media, aligner):
        _print(f)
    words, phones, per_clip = evaluate_clips(media, aligner)
    print("Real speech vs reference alignments (groundtruth/align; target: word median <= 50 ms):")
    _print(words)
    _print(phones)
    if args.per_clip:
        for _, f in per_clip:
            _print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
