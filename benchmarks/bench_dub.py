"""Speed of ``talker dub`` (720p) and ``talker drive`` (512x512): stage timings and real-time factor.

The 720p clip is a face video upscaled and padded to 1280x720 (``--video``; default: a clip rendered
here from the bundled portrait). The new speech is synthesized with the default voice (its time is
reported apart, as the TTS is not part of dubbing).

    python -m benchmarks.bench_dub [--video FACE.mp4] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

FPS = 25.0
SENTENCE = "We choose to dub this clip on a laptop, and to do it faster than real time, because it is useful."


def _rendered_clip(path: Path, seconds: float) -> Path:
    """A talking clip of the bundled portrait (jaw, head and blinks from a fixed pattern), 512x512."""
    from motion.types import CHANNEL_INDEX as C
    from motion.types import CHANNELS
    from render.warp import WarpRenderer
    from talker.mp4 import Mp4Writer
    from talker.pipeline import Pipeline

    r = WarpRenderer(Pipeline().prepare_avatar(None, (512, 512)).rig)
    n = int(seconds * FPS)
    t = np.arange(n) / FPS
    v = np.zeros((n, len(CHANNELS)), np.float32)
    v[:, C["jawOpen"]] = np.clip(0.3 + 0.3 * np.sin(2 * np.pi * 2.1 * t), 0, 1)
    v[:, C["headYaw"]] = 6 * np.sin(2 * np.pi * t / 4)
    v[:, C["headPitch"]] = 3 * np.sin(2 * np.pi * t / 3)
    with Mp4Writer(path, 512, 512, FPS, 16000) as w:
        for k in range(n):
            w.write_audio(np.zeros(int(16000 / FPS), np.float32))
            w.write_video(r.render(v[k]))
    return path


def _to_720p(src: Path, dst: Path, seconds: float) -> Path:
    """``src`` scaled to 720 rows and padded (edge pixels repeated) to 1280x720, at most ``seconds`` long."""
    from talker.mp4 import Mp4Writer
    from talker.video import probe_video, read_audio, read_frames

    info = probe_video(src)
    audio = read_audio(src, 16000)
    samples = audio[0] if audio is not None else np.zeros(0, np.float32)
    n = int(seconds * info.fps)
    with Mp4Writer(dst, 1280, 720, info.fps, 16000, crf=18) as w:
        for k, f in enumerate(read_frames(src, n)):
            s = 720 / f.shape[0]
            g = cv2.resize(f, (int(round(f.shape[1] * s)) // 2 * 2, 720), interpolation=cv2.INTER_CUBIC)
            pad = (1280 - g.shape[1]) // 2
            g = cv2.copyMakeBorder(g, 0, 0, pad, 1280 - g.shape[1] - pad, cv2.BORDER_REPLICATE)
            a, b = int(round(k * 16000 / info.fps)), int(round((k + 1) * 16000 / info.fps))
            seg = samples[a:b]
            w.write_audio(np.concatenate([seg, np.zeros(b - a - len(seg), np.float32)]))
            w.write_video(g)
    return dst


def main(argv: list[str] | None = None) -> int:
    from audio.types import concat_speech, silence
    from audio.voices import DEFAULT_VOICE_ID, make_tts, synthesize
    from talker.drive import drive_portrait
    from talker.dub import DubSettings, dub_video
    from talker.video import probe_video

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=None, help="face video to scale to 720p and to drive with")
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = args.video or _rendered_clip(tmp / "clip.mp4", args.seconds)
        hd = _to_720p(src, tmp / "clip720.mp4", args.seconds)
        dur = probe_video(hd).duration_s
        t0 = time.perf_counter()
        tts = make_tts(DEFAULT_VOICE_ID)
        said = synthesize(tts, SENTENCE)
        speech = concat_speech([silence(0.2, said.sample_rate), said, silence(0.3, said.sample_rate)])
        t_tts = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        res = dub_video(hd, speech, tmp / "dub.mp4", DubSettings(fit="cut"))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in res.timings_s.items())
        print(f"dub 1280x720, {res.n_frames} frames ({res.duration_s:.2f} s of video; clip {dur:.2f} s)")
        print(f"  stages: {stages}; speech synthesis (not counted) {t_tts:.2f} s")
        print(f"  wall {wall:.2f} s -> {res.duration_s / wall:.2f}x real time; CPU {cpu:.2f} s (all threads)")
        t0, c0 = time.perf_counter(), time.process_time()
        dr = drive_portrait(None, src, tmp / "drive.mp4", (512, 512))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in dr.timings_s.items())
        print(f"drive 512x512, {dr.n_frames} frames ({dr.duration_s:.2f} s)")
        print(f"  stages: {stages}")
        print(f"  wall {wall:.2f} s -> {dr.duration_s / wall:.2f}x real time; CPU {cpu:.2f} s (all threads)")
        print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
