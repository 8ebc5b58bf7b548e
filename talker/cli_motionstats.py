"""``talker motion-stats VIDEO...``: how the face in a clip or render moves (``motion.stats``), against
the filmed reference shipped with talker.

Each video's face is read by the motion encoder; its audio is aligned (to ``--text`` when given, to the
words recognised in it otherwise) for the speaking frames and the p/b/m figures; ``--no-align`` uses the
audio's loudness alone.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def clip_stats(
    path: str | Path, text: str | None = None, align: bool = True, face_index: int | None = None
) -> dict[str, float]:
    """``motion.stats.motion_stats`` of the face in a video file (raises ``ValueError`` subclasses for a
    bad file or a video without a face)."""
    return clip_track(path, text, align, face_index)[0]


def clip_track(
    path: str | Path, text: str | None = None, align: bool = True, face_index: int | None = None
) -> tuple[dict[str, float], Any, Any, np.ndarray | None, np.ndarray]:
    """(stats, track, phones or None, speaking mask or None, valid frames) of a video file."""
    from audio.align import AlignError, align_file
    from audio.io import AudioError, load_audio
    from motion.stats import motion_stats, speaking_mask_from_audio
    from render.encoder import encode_frames
    from talker.video import probe_video, read_frames

    info = probe_video(path)
    enc = encode_frames(read_frames(info.path), info.fps, face_index)
    track, valid = enc.track, enc.faces.valid
    phones = None
    speaking: np.ndarray | None = None
    try:
        if align:
            phones = align_file(info.path, text).speech.phones
        else:
            samples, sr = load_audio(info.path)
            speaking = speaking_mask_from_audio(samples, sr, track.n_frames, track.fps)
    except (AudioError, AlignError):
        phones, speaking = None, None  # no usable audio: every frame counts as speaking
    return motion_stats(track, phones, speaking, valid), track, phones, speaking, valid


def _fmt(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.3f}"


def _run(args: argparse.Namespace) -> int:
    from motion.stats import compare, reference_ranges

    ranges = reference_ranges()
    report: dict[str, Any] = {}
    for path in args.videos:
        stats = clip_stats(path, args.text, not args.no_align, args.face_index)
        report[str(path)] = {"stats": stats, "inside_reference": compare(stats, ranges)}
    if args.json:
        clean = {
            path: {
                "stats": {k: v if math.isfinite(v) else None for k, v in rep["stats"].items()},
                **{"inside_reference": rep["inside_reference"]},
            }
            for path, rep in report.items()
        }
        print(json.dumps(clean, indent=2))
        return 0
    names = list(next(iter(report.values()))["stats"])
    head = f"{'statistic':32s} {'filmed range':>15s} " + " ".join(f"{Path(p).name[:18]:>18s}" for p in report)
    print(head)
    for k in names:
        r = ranges.get(k)
        ref = f"{r.lo:.3f}-{r.hi:.3f}" if r else ""
        cells = []
        for rep in report.values():
            v = rep["stats"][k]
            flag = {True: " ", False: "*", None: " "}[rep["inside_reference"].get(k)]
            cells.append(f"{_fmt(v) + flag:>18s}")
        print(f"{k:32s} {ref:>15s} " + " ".join(cells))
    print("* outside the range of filmed speakers' sentence-length stretches (motion/assets/reference_stats.json)")
    return 0


def add_motion_stats_parser(sub: Any) -> None:
    """Register ``motion-stats`` on talker's subcommands."""
    p = sub.add_parser(
        "motion-stats",
        help="how the face in a video or render moves (articulation speed, lip gap, p/b/m, head, blinks)",
    )
    p.add_argument("videos", nargs="+", help="video files (filmed clips or talker renders)")
    p.add_argument("--text", default=None, help="the clip's transcript (default: recognise the words)")
    p.add_argument("--no-align", action="store_true", help="speaking frames from loudness only (no phones)")
    p.add_argument("--face-index", type=int, default=None, help="which face when there are several (0 = leftmost)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON (null where not measurable)")
    p.set_defaults(func=_run)
