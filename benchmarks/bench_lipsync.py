"""Speed of the learned lip-sync model on one core: ``python -m benchmarks.bench_lipsync [--seconds 60] [--model DIR]``.

Prints, with numpy's BLAS held to one thread, real-time factors from the process's CPU time (the cost on
one core, whatever else the machine runs) and, in brackets, from the wall clock:
* whole-file inference (features + network) on ``--seconds`` of audio: real-time factor (target >= 200x);
* streaming in 20 ms chunks (a live audio track's packet size): real-time factor and per-chunk compute
  (median, p99), and the look-ahead: the audio a frame waits for after its centre;
* whole-file motion (model + the generator's blinks, gaze and head) at 25 fps.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.results import command_line, record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_lipsync", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio length (default 60)")
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--no-record", action="store_true", help="do not append to benchmarks/results.tsv")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from audio.mel import SAMPLE_RATE
    from motion.audio_motion import audio_motion
    from motion.lipsync import LipsyncModel

    model = LipsyncModel.load(args.model)
    rng = np.random.default_rng(0)
    n = int(args.seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    # syllable-rate bursts of a voiced buzz with noise: the cost does not depend on content
    x = ((np.sin(2 * np.pi * 4 * t) > 0) * np.sin(2 * np.pi * 130 * t) * 0.3 + rng.normal(0, 0.02, n)).astype(
        np.float32
    )
    with threadpool_limits(1):
        model.predict(x[:SAMPLE_RATE], SAMPLE_RATE)  # warm-up
        c0, t0 = time.process_time(), time.perf_counter()
        model.predict(x, SAMPLE_RATE)
        whole, whole_wall = time.process_time() - c0, time.perf_counter() - t0
        stream = model.stream()
        chunk = SAMPLE_RATE // 50
        lat = []
        c0, t0 = time.process_time(), time.perf_counter()
        for a in range(0, n, chunk):
            c1 = time.process_time()
            stream.push(x[a : a + chunk])
            lat.append(time.process_time() - c1)
        stream.finish()
        streamed, streamed_wall = time.process_time() - c0, time.perf_counter() - t0
        c0, t0 = time.process_time(), time.perf_counter()
        audio_motion(model, x, SAMPLE_RATE, 25.0)
        motion, motion_wall = time.process_time() - c0, time.perf_counter() - t0
    med, p99 = float(np.median(lat)) * 1000, float(np.percentile(lat, 99)) * 1000
    sec = args.seconds
    line = (
        f"lip-sync model ({model.n_params()} parameters), one thread, {sec:g} s of audio, CPU time (wall): whole "
        f"file {sec / whole:.0f}x ({sec / whole_wall:.0f}x) real time; 20 ms chunks {sec / streamed:.0f}x "
        f"({sec / streamed_wall:.0f}x), per chunk median {med:.2f} ms, p99 {p99:.2f} ms; look-ahead "
        f"{model.config.lookahead_s * 1000:.0f} ms; full motion track at 25 fps {sec / motion:.0f}x "
        f"({sec / motion_wall:.0f}x)"
    )
    print(line)
    if not args.no_record:
        record(command_line("benchmarks.bench_lipsync", argv), line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
