"""Video avatars: preparing a clip (time, cached size), rendering speech on it (speed against a portrait
render of the same speech in the same run), and an independent judge (dlib) on the result.

The clip is ``--video`` played forwards and backwards to ``--seconds`` and scaled and padded to 1280x720
(default: 60 s), so preparation is timed on the clip length and size users bring. The judge reads: face
found per frame, face-embedding distance of each frame to the loop frame it was drawn on, the lips at the
speech's p/b/m and in its pauses, and the loop's seam against the clip's own frame-to-frame steps.

    python -m benchmarks.bench_avatar --video ../shared/media/video/hdtf_WDA_KatieHill_000.mp4
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

SENTENCE = (
    "Maybe we should bring the big blue map. Please move back, because my brother Bob brought pie. "
    "Then we may be home by five."
)
CLOSED = 0.06  # dlib's inner-lip gap (IOD) below which the lips read as shut


def _clip_720p(src: Path, dst: Path, seconds: float) -> Path:
    """``src`` forwards then backwards until ``seconds``, scaled to 720 rows and padded to 1280x720."""
    from talker.mp4 import Mp4Writer
    from talker.video import probe_video, read_frames

    info = probe_video(src)
    frames = list(read_frames(src))
    order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    n = int(seconds * info.fps)
    with Mp4Writer(dst, 1280, 720, info.fps, 16000, crf=18, marks=False) as w:
        for k in range(n):
            f = frames[order[k % len(order)]]
            s = 720 / f.shape[0]
            g = cv2.resize(f, (int(round(f.shape[1] * s)) // 2 * 2, 720), interpolation=cv2.INTER_CUBIC)
            pad = (1280 - g.shape[1]) // 2
            g = cv2.copyMakeBorder(g, 0, 0, pad, 1280 - g.shape[1] - pad, cv2.BORDER_REPLICATE)
            w.write_audio(
                np.zeros(int(round((k + 1) * 16000 / info.fps)) - int(round(k * 16000 / info.fps)), np.float32)
            )
            w.write_video(g)
    return dst


def _judge(frames: list[np.ndarray], loop: list[np.ndarray], speech, fps: float) -> str:  # type: ignore[no-untyped-def]
    from audio.types import SILENCE
    from tools.quality import Judge, inner_lip_gap

    judge = Judge()
    # the person: the mean embedding of the loop's frames (every fifth)
    ref = [a[1] for a in (judge.analyse(f) for f in loop[::5]) if a is not None]
    person = np.mean(ref, axis=0)
    ref_d = [float(np.linalg.norm(e - person)) for e in ref]
    found, dist, same, gaps = 0, [], [], []
    for k, f in enumerate(frames):
        a = judge.analyse(f)
        gaps.append(inner_lip_gap(a[0]) if a is not None else np.nan)
        if a is not None:
            found += 1
            dist.append(float(np.linalg.norm(a[1] - person)))
            b = judge.analyse(loop[k % len(loop)])
            if b is not None:
                same.append(float(np.linalg.norm(a[1] - b[1])))
    shut = [0, 0]
    pause = [0, 0]
    open_pauses: list[str] = []
    for p in speech.phones:
        k = int((p.start_s + p.end_s) / 2 * fps)
        if k >= len(gaps):
            continue
        if p.symbol in ("P", "B", "M"):
            shut[1] += 1
            shut[0] += int(gaps[k] < CLOSED)
        elif p.symbol == SILENCE and p.duration_s >= 0.3:
            pause[1] += 1
            pause[0] += int(gaps[k] < CLOSED)
            if gaps[k] >= CLOSED:
                open_pauses.append(f"{p.start_s:.2f}-{p.end_s:.2f} s gap {gaps[k]:.3f}")
    return (
        f"face found {found}/{len(frames)}, embedding distance to the person (the loop's mean) max "
        f"{max(dist):.3f} (median {np.median(dist):.3f}; the loop's own frames: max {max(ref_d):.3f}), to the "
        f"loop frame drawn on max {max(same):.3f}, p/b/m shut {shut[0]}/{shut[1]}, pauses shut {pause[0]}/{pause[1]}"
        + (f" (open: {'; '.join(open_pauses)})" if open_pauses else "")
    )


def _seam(loop: list[np.ndarray], clip: Path, max_frames: int) -> str:
    from talker.video import read_frames

    def small(f: np.ndarray) -> np.ndarray:
        return cv2.resize(f, (f.shape[1] // 4, f.shape[0] // 4), interpolation=cv2.INTER_AREA).astype(np.float32)

    src = [small(f) for f in read_frames(clip, max_frames)]
    own = np.percentile([np.abs(b - a).mean() for a, b in zip(src, src[1:])], 99)
    seam = float(np.abs(small(loop[0]) - small(loop[-1])).mean())
    return f"loop seam {seam:.2f} vs the clip's own 99th-percentile step {own:.2f} (grey levels, quarter size)"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.results import command_line, record
    from talker.avatar_player import load_video_avatar
    from talker.pipeline import Pipeline, RenderSettings
    from talker.video import read_frames
    from talker.video_avatar import prepare_video_avatar

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, required=True, help="a face video (played back and forth to --seconds)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--no-judge", action="store_true", help="timings only")
    args = ap.parse_args(argv)
    lines = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = _clip_720p(args.video, tmp / "clip.mp4", args.seconds)
        t0, c0 = time.perf_counter(), time.process_time()
        info = prepare_video_avatar(clip, "bench", tmp)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        lines.append(
            f"prepare {args.seconds:g} s 1280x720 clip: wall {wall:.1f} s, CPU {cpu:.1f} s; loop "
            f"{info.n_frames / info.fps:.1f} s at {info.size[0]}x{info.size[1]}, {info.bank} mouths, cached "
            f"{info.bytes / 1e6:.1f} MB"
        )
        avatar = load_video_avatar("bench", tmp)
        pipeline = Pipeline()
        speech = pipeline.synthesize(SENTENCE)
        settings = RenderSettings(fps=avatar.fps, size=avatar.size)
        t0 = time.perf_counter()
        res = pipeline.render_mp4(avatar, speech, tmp / "avatar.mp4", settings)
        t_avatar = time.perf_counter() - t0
        portrait = pipeline.prepare_avatar(None, avatar.size)
        t0 = time.perf_counter()
        pipeline.render_mp4(portrait, speech, tmp / "portrait.mp4", settings)
        t_portrait = time.perf_counter() - t0
        lines.append(
            f"render {res.duration_s:.1f} s of speech at {avatar.size[0]}x{avatar.size[1]}: video avatar "
            f"{res.duration_s / t_avatar:.2f}x real time ({1000 * res.timings_s['render'] / res.n_frames:.1f} ms a "
            f"frame drawn), portrait {res.duration_s / t_portrait:.2f}x"
        )
        loop = list(read_frames(avatar.loop()))
        lines.append(_seam(loop, clip, int(min(args.seconds, 30) * info.fps)))
        if not args.no_judge:
            lines.append(_judge(list(read_frames(res.path)), loop, speech, avatar.fps))
    lines.append(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("\n".join(lines))
    record(command_line("benchmarks.bench_avatar", argv), "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
