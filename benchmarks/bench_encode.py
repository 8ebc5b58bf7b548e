"""x264 settings for offline renders: CPU time a frame, bitrate and Y-PSNR against the rendered frames.

Renders ``talker bench``'s utterance on the bundled portrait, then encodes the same frames with each
preset and crf, from I420 converted by OpenCV (timed apart; what renders, dubs and drives encode through
``talker.mp4.mp4_output``) and from RGB through libav's own conversion (a bare ``Mp4Writer``). The
default is marked with ``*``.

    python -m benchmarks.bench_encode [--size 512] [--frames 200]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from typing import Any

import numpy as np

SETTINGS = [
    ("veryfast", 20),
    ("veryfast", 23),
    ("superfast", 20),
    ("superfast", 23),
    ("superfast", 24),
    ("ultrafast", 20),
    ("ultrafast", 23),
]


def _frames(size: int, n: int) -> list[np.ndarray]:
    from render.warp import WarpRenderer
    from talker.bench import BENCH_TEXT
    from talker.pipeline import Pipeline, RenderSettings

    p = Pipeline()
    settings = RenderSettings(size=(size, size))
    avatar = p.prepare_avatar(None, (size, size))
    track = p.motion(p.synthesize(BENCH_TEXT), settings)
    r = WarpRenderer(avatar.rig)
    return [np.array(r.render(track.values[k]), copy=True) for k in range(min(n, len(track.values)))]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-9))


def encode(frames: list[np.ndarray], yuvs: list[np.ndarray], preset: str, crf: int, rgb: bool) -> dict[str, Any]:
    """Encode ``frames`` (RGB) or ``yuvs`` (I420) to an in-memory MP4; CPU ms a frame, Mb/s at 25 fps, Y-PSNR."""
    import av

    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    out = av.open(buf, "w", format="mp4")
    v = out.add_stream("libx264", rate=25)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    v.options = {"crf": str(crf), "preset": preset}
    t0 = time.process_time()
    for i in range(len(frames)):
        if rgb:
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
        else:
            frame = av.VideoFrame.from_ndarray(yuvs[i], format="yuv420p")
        frame.pts = i
        for pkt in v.encode(frame):
            out.mux(pkt)
    for pkt in v.encode(None):
        out.mux(pkt)
    out.close()
    cpu = time.process_time() - t0
    size = len(buf.getvalue())
    buf.seek(0)
    with av.open(buf, "r") as back:
        psnr = [_psnr(f.to_ndarray(format="yuv420p")[:h], yuvs[i][:h]) for i, f in enumerate(back.decode(video=0))]
    return {
        "cpu_ms": 1000 * cpu / len(frames),
        "mbps": size * 8 * 25 / len(frames) / 1e6,
        "psnr_mean": float(np.mean(psnr)),
        "psnr_min": float(np.min(psnr)),
    }


def main(argv: list[str] | None = None) -> int:
    import cv2

    from benchmarks.results import command_line, record
    from talker.mp4 import DEFAULT_CRF, DEFAULT_PRESET

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.tsv")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    frames = _frames(args.size, args.frames)
    t0 = time.process_time()
    yuvs = [cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420) for f in frames]
    convert = 1000 * (time.process_time() - t0) / len(frames)
    print(f"{len(frames)} frames at {args.size}x{args.size}; OpenCV RGB -> I420 {convert:.2f} CPU ms a frame")
    print(f"  {'preset':10s} {'crf':>3s} {'input':5s} {'CPU ms':>7s} {'Mb/s':>6s} {'Y-PSNR mean/min dB':>19s}")
    lines = []
    rows = [(p, c, False) for p, c in SETTINGS] + [("veryfast", 20, True), ("superfast", 23, True)]
    for preset, crf, rgb in rows:
        m = encode(frames, yuvs, preset, crf, rgb)
        cpu = m["cpu_ms"] + (0.0 if rgb else convert)
        star = "*" if (preset, crf, rgb) == (DEFAULT_PRESET, DEFAULT_CRF, False) else " "
        line = (
            f"{star} {preset:10s} {crf:3d} {'rgb' if rgb else 'i420':5s} {cpu:7.2f} {m['mbps']:6.2f} "
            f"{m['psnr_mean']:10.2f} / {m['psnr_min']:.2f}"
        )
        print(line)
        kind = "rgb" if rgb else "i420"
        lines.append(f"{preset} crf {crf} {kind}: {cpu:.2f} ms, {m['mbps']:.2f} Mb/s, {m['psnr_mean']:.2f} dB")
    print("CPU ms include the I420 conversion; rgb: libav converts (what a plain RGB frame costs).")
    if not args.no_record:
        record(command_line("benchmarks.bench_encode", argv), f"{args.size}x{args.size}: " + "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
