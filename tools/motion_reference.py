"""Build the filmed motion reference (``motion/assets/reference_stats.json``) from real talking-head videos.

    python -m tools.motion_reference [VIDEO...] [--out motion/assets/reference_stats.json]

Default videos: every MP4 in ``$TALKER_MEDIA/video`` (``../shared/media/video``). Each is read by the motion
encoder and its audio aligned to the words recognised in it; the file keeps each clip's statistics and,
per statistic, the range over the clips' sentence-length stretches (``WINDOW_S`` long, ``HOP_S`` apart),
which is what a render of one sentence is compared with. It holds statistics only, no frames.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from pathlib import Path

import numpy as np

from motion.stats import windows
from talker.cli_motionstats import clip_track
from tools.eval_align import media_dir

WINDOW_S = 5.0  # a held-out sentence renders to 4.5-6 s
HOP_S = 0.5
OUT = Path(__file__).resolve().parent.parent / "motion" / "assets" / "reference_stats.json"


def _finite(d: dict[str, float]) -> dict[str, float | None]:
    return {k: (round(v, 4) if math.isfinite(v) else None) for k, v in d.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("videos", nargs="*")
    ap.add_argument("--media", default=None)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    videos = [Path(v) for v in args.videos] or sorted((media_dir(args.media) / "video").glob("*.mp4"))
    if not videos:
        print("no videos given or found")
        return 1
    clips = {}
    all_windows: list[dict[str, float]] = []
    for v in videos:
        stats, track, phones, speaking, valid = clip_track(v)
        ws = windows(track, phones, speaking, valid, WINDOW_S, HOP_S)
        all_windows.extend(ws)
        clips[v.name] = {"stats": _finite(stats), "windows": len(ws)}
        print(f"{v.name}: {track.n_frames} frames, {len(ws)} windows", flush=True)
    ranges = {}
    for k in all_windows[0]:
        vals = np.array([w[k] for w in all_windows], float)
        vals = vals[np.isfinite(vals)]
        if len(vals):
            ranges[k] = [round(float(vals.min()), 4), round(float(vals.max()), 4)]
    data = {
        "about": "motion statistics (motion.stats) of filmed talking heads read by the motion encoder, audio "
        f"aligned to recognised words; window_ranges: min/max over {WINDOW_S:g} s stretches {HOP_S:g} s apart",
        "built": datetime.date.today().isoformat(),
        "clips": clips,
        "window_ranges": ranges,
    }
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
