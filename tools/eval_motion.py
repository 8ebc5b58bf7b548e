"""Motion metrics and the Rhubarb comparison on the speech in ../shared/media.

    python -m tools.eval_motion [MEDIA_DIR]

Ground-truth timings: MBROLA .pho and espeak events (exact), pocketsphinx alignments of the real
recordings (groundtruth/align/*.phones.tsv).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from audio.io import load_audio
from audio.types import Phone, Speech
from motion.generator import MotionGenerator
from tools.eval_align import media_dir, read_events, read_pho, read_reference_tsv
from tools.motion_metrics import MotionReport, evaluate, phones_from_segments
from tools.rhubarb import agreement, classify, rhubarb_frames


def corpus(media: Path) -> list[tuple[str, Speech]]:
    gt = media / "groundtruth"
    items: list[tuple[str, Speech]] = []
    for name, wav, phones_fn in (
        (
            "mbrola_us1 (.pho)",
            gt / "tts_mb-us1_s1.wav",
            lambda: phones_from_segments(read_pho(gt / "tts_mb-us1_s1.pho")),
        ),
        (
            "espeak en-us (events)",
            gt / "tts_espeak_en-us_s1.wav",
            lambda: phones_from_segments(read_events(gt / "tts_espeak_en-us_s1.events.tsv")[0]),
        ),
    ):
        if wav.exists():
            s, sr = load_audio(wav)
            items.append((name, _speech(s, sr, phones_fn())))
    for tsv in sorted((gt / "align").glob("*.phones.tsv")):
        stem = tsv.name.replace(".phones.tsv", "")
        wav = media / "speech" / f"{stem}.wav"
        if not wav.exists() or "?" in tsv.read_text().split("\n")[1]:
            continue  # word-only alignments carry no phones
        s, sr = load_audio(wav)
        items.append((stem, _speech(s, sr, phones_from_segments(read_reference_tsv(tsv)[0], len(s) / sr))))
    return items


def _speech(samples: np.ndarray, sr: int, phones: list[Phone]) -> Speech:
    dur = len(samples) / sr
    phones = [p for p in phones if p.start_s < dur]
    if phones and phones[-1].end_s > dur:
        last = phones[-1]
        phones[-1] = Phone(last.start_s, dur, last.symbol, last.stress)
    return Speech(samples.astype(np.float32), sr, tuple(phones))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    media = media_dir(args[0] if args else None)
    items = corpus(media)
    if not items:
        print(f"no ground truth found under {media}")
        return 1
    gen = MotionGenerator(25.0, seed=0)
    reports: list[MotionReport] = []
    agree_all = []
    t_total = 0.0
    dur_total = 0.0
    for name, speech in items:
        t0 = time.perf_counter()
        track = gen.generate(speech)
        t_total += time.perf_counter() - t0
        dur_total += speech.duration_s
        rep = evaluate(track, speech.phones)
        reports.append(rep)
        agr = agreement(classify(track), rhubarb_frames(speech.phones, track.n_frames, track.fps))
        agree_all.append(agr)
        print(f"{name:24s} {rep.row()} | Rhubarb-shape agreement {100 * agr:.0f}%")
    nb = sum(r.bilabials for r in reports)
    npf = sum(r.pause_frames for r in reports)
    nv = sum(r.open_vowels for r in reports)
    print(
        f"ALL: bilabials closed {100 * sum(r.bilabial_closed * r.bilabials for r in reports) / max(nb, 1):.1f}% "
        f"of {nb}; pause frames closed {100 * sum(r.pause_closed * r.pause_frames for r in reports) / max(npf, 1):.1f}%"
        f" of {npf}; open vowels open {100 * sum(r.open_vowel_open * r.open_vowels for r in reports) / max(nv, 1):.1f}%"
        f" of {nv}; max jaw jitter {max(r.jaw_jitter for r in reports):.4f}; "
        f"max jaw flicker {max(r.jaw_flicker for r in reports):.4f}; "
        f"max head jitter {max(r.head_jitter_deg for r in reports):.4f} deg; "
        f"Rhubarb agreement {100 * float(np.mean(agree_all)):.0f}%"
    )
    rtf = dur_total / t_total
    print(
        f"motion speed, per clip (cold): {dur_total:.1f} s of speech in {t_total * 1e3:.1f} ms = {rtf:.0f}x real time"
    )
    # steady state on a long input: the 16 kHz recordings joined 20 times (~8 minutes of speech)
    from audio.types import concat_speech

    same_rate = [s for _, s in items if s.sample_rate == 16000] or [items[0][1]]
    long = concat_speech(same_rate * 20)
    t0 = time.perf_counter()
    gen.generate(long)
    dt = time.perf_counter() - t0
    print(
        f"motion speed, steady: {long.duration_s:.0f} s of speech in {dt:.3f} s = {long.duration_s / dt:.0f}x real time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
