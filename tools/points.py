"""Five guide points on faces the detector cannot find: how many images of a folder mediapipe finds a face
in, and clips rendered from annotated points.

    python -m tools.points DIR... [--points ANNOTATIONS.json] [--render OUT_DIR] [--size 256]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from talker.points import avatar_from_points, load_annotations
from talker.portrait import load_image


def _rates(argv: list[str]) -> int:
    """``python -m talker.points DIR... [--points FILE] [--render DIR]``: detection rate, then with points."""

    from render.landmarks import MediaPipeFaceMesh
    from talker.pipeline import Pipeline, RenderSettings

    ap = argparse.ArgumentParser(prog="python -m tools.points", description="face detection rate, then with points")
    ap.add_argument("folders", nargs="+", help="image folders (searched recursively)")
    ap.add_argument("--points", default=None, help="JSON of five-point annotations, keyed by path under a folder")
    ap.add_argument("--render", default=None, help="render a short clip of every image with points into this folder")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    ann = load_annotations(args.points) if args.points else {}
    det = MediaPipeFaceMesh()
    exts = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
    speech = None
    for folder in map(Path, args.folders):
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts)
        found = with_points = rendered = 0
        print(f"{folder}:")
        for img in images:
            rel = img.relative_to(folder).as_posix()
            n = len(det.detect(load_image(img)))
            found += n > 0
            line = f"  {rel:<40} mediapipe faces {n}"
            if rel in ann:
                with_points += 1
                t0 = time.perf_counter()
                avatar = avatar_from_points(img, ann[rel], (args.size, args.size))
                line += f"; 5 points -> rig {time.perf_counter() - t0:.2f} s"
                if args.render:
                    pipe = Pipeline(detector=det)
                    speech = speech or pipe.synthesize("Hello! I can talk now.")
                    out = Path(args.render) / (rel.replace("/", "_").rsplit(".", 1)[0] + ".mp4")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    res = pipe.render_mp4(avatar, speech, out, RenderSettings(size=(args.size, args.size)))
                    rendered += 1
                    line += f" -> {out} ({res.n_frames} frames)"
            print(line)
        print(
            f"  detected by mediapipe: {found}/{len(images)}; with points: {with_points}/{len(images)}"
            + (f"; rendered {rendered}" if args.render else "")
        )
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_rates(sys.argv[1:]))
