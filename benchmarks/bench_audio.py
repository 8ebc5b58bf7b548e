"""Speed of the audio stage: ``python -m benchmarks.bench_audio [--minutes 10] [--media DIR]``.

Prints:
* Piper real-time factor (seconds of speech per second of synthesis) on a ~15 s paragraph (target >= 3x);
* whether streaming the paragraph chunk by chunk would leave gaps in playback (total stall);
* time to the first audio chunk of a three-sentence paragraph, voice already loaded (target <= 0.5 s), and
  the same from a cold start (voice load included);
* espeak-ng real-time factor and first-chunk time;
* aligning ``--minutes`` of real speech (the clips in ``speech/`` repeated and joined) to its transcript:
  real-time factor (target >= 5x), and peak memory: Python allocations (tracemalloc) and process RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from benchmarks.results import command_line, record

PARAGRAPH = (
    "The committee met on Tuesday morning to review the plans for the new library. Everyone agreed that the "
    "reading room should face the park, where the light is best in the afternoon. After a long discussion about "
    "the budget, they decided to keep the old oak shelves, to restore the stained glass windows, and to open a "
    "small cafe near the entrance. Work will begin in the spring, and the doors should open before the end of "
    "next year."
)
THREE_SENTENCES = (
    "Good morning, and thank you all for coming to the opening of our new community garden today. "
    "We planted more than two hundred trees this spring. Please enjoy the tour."
)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def bench_tts(name: str, make: object, text: str, first_text: str) -> dict[str, float]:
    """RTF on ``text`` and time to first chunk on ``first_text`` for the TTS built by ``make()``."""
    t0 = time.perf_counter()
    tts = make()  # type: ignore[operator]
    first = next(iter(tts.stream(first_text)))
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    audio_s = 0.0
    stall = 0.0
    play_end = None  # when playback of the chunks so far would end, had it started at the first chunk
    for c in tts.stream(text):
        ready = time.perf_counter() - t0
        if play_end is not None and ready > play_end:
            stall += ready - play_end
        play_end = max(play_end or ready, ready) + c.speech.duration_s
        audio_s += c.speech.duration_s
    synth = time.perf_counter() - t0
    ttfa = []
    for _ in range(3):
        t0 = time.perf_counter()
        first = next(iter(tts.stream(first_text)))
        ttfa.append(time.perf_counter() - t0)
    return {
        "audio_s": audio_s,
        "synth_s": synth,
        "rtf": audio_s / synth,
        "ttfa_s": float(np.median(ttfa)),
        "cold_ttfa_s": cold,
        "first_chunk_s": first.speech.duration_s,
        "stall_s": stall,
    }


def clips_for(media: Path, minutes: float) -> tuple[np.ndarray, str]:
    """The real speech clips (16 kHz) with their transcripts, repeated to ``minutes`` of audio."""
    from audio.io import load_audio

    parts: list[np.ndarray] = []
    texts: list[str] = []
    for wav in sorted((media / "speech").glob("*.wav")):
        txt = wav.with_suffix(".txt")
        if txt.exists():
            x, _ = load_audio(wav, sample_rate=16000)
            parts.append(x)
            texts.append(txt.read_text().strip())
    if not parts:
        raise SystemExit(f"no speech clips under {media / 'speech'}")
    one = sum(len(p) for p in parts) / 16000
    reps = max(1, int(np.ceil(minutes * 60 / one)))
    return np.concatenate(parts * reps), " ".join(texts * reps)


def bench_align(media: Path, minutes: float) -> dict[str, float]:
    from audio.align import Aligner

    x, text = clips_for(media, minutes)
    aligner = Aligner()
    aligner.align(x[: 16000 * 3], 16000, text.split(".")[0])  # load the models outside the timing
    rss0 = _rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    res = aligner.align(x, 16000, text)
    elapsed = time.perf_counter() - t0
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dur = len(x) / 16000
    return {
        "audio_s": dur,
        "align_s": elapsed,
        "rtf": dur / elapsed,
        "words": float(len(res.speech.words)),
        "forced": float(res.method == "forced"),
        "py_peak_mb": py_peak / 2**20,
        "rss_before_mb": rss0,
        "peak_rss_mb": _peak_rss_mb(),
        "samples_mb": x.nbytes / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    from tools.eval_align import media_dir

    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_audio", description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of speech to align (default 10)")
    ap.add_argument("--media", help="test media folder (default: $TALKER_MEDIA or ../shared/media)")
    ap.add_argument("--skip-align", action="store_true")
    ap.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.tsv")
    args = ap.parse_args(argv)
    lines: list[str] = []

    from audio.espeak_tts import EspeakTTS
    from audio.piper_tts import PiperTTS

    print(f"text: paragraph {len(PARAGRAPH)} chars; first-chunk test: {THREE_SENTENCES!r}")
    for name, make in (("Piper joe (medium)", PiperTTS), ("espeak-ng en-us", EspeakTTS)):
        r = bench_tts(name, make, PARAGRAPH, THREE_SENTENCES)
        lines.append(
            f"{name:20s} {r['audio_s']:5.1f} s of speech in {r['synth_s']:5.2f} s = {r['rtf']:5.1f}x real time; "
            f"first chunk ({r['first_chunk_s']:.1f} s of audio) after {r['ttfa_s'] * 1000:4.0f} ms warm, "
            f"{r['cold_ttfa_s']:.2f} s cold (voice load included); streamed paragraph played from its first "
            f"chunk would stall {r['stall_s']:.2f} s in total"
        )
        print(lines[-1])
    if not args.skip_align:
        media = media_dir(args.media)
        r = bench_align(media, args.minutes)
        lines.append(
            f"alignment: {r['audio_s'] / 60:.1f} min of speech, {int(r['words'])} words, in {r['align_s']:.1f} s = "
            f"{r['rtf']:.1f}x real time ({'forced' if r['forced'] else 'FELL BACK'}); "
            f"Python peak {r['py_peak_mb']:.0f} MB (tracemalloc; the 16 kHz samples are {r['samples_mb']:.0f} MB), "
            f"process RSS {r['rss_before_mb']:.0f} MB before, peak {r['peak_rss_mb']:.0f} MB"
        )
        print(lines[-1])
    if not args.no_record:
        print(f"recorded in {record(command_line('benchmarks.bench_audio', argv), chr(10).join(lines))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
