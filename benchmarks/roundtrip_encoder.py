"""Motion encoder round trip: a known track rendered on a portrait, encoded back from the frames; the
error per channel.

    python -m benchmarks.roundtrip_encoder [--face PORTRAIT] [--seconds 6]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

FPS = 25.0


def known_track(n: int) -> np.ndarray:
    """(n, channels): every channel the renderer draws, moving on its own period (whole periods over 6 s,
    so the track's median is its rest)."""
    from motion.types import CHANNEL_INDEX as C
    from motion.types import CHANNELS

    t = np.arange(n) / FPS
    v = np.zeros((n, len(CHANNELS)), np.float32)
    v[:, C["jawOpen"]] = np.clip(0.35 + 0.3 * np.sin(2 * np.pi * 1.3 * t) + 0.15 * np.sin(2 * np.pi * 3.1 * t), 0, 0.9)
    for b in range(20, n - 3, 45):
        v[b - 2 : b + 3, C["eyeBlinkLeft"]] = v[b - 2 : b + 3, C["eyeBlinkRight"]] = [0.4, 0.9, 1, 0.9, 0.4]
    v[:, C["headYaw"]] = 8 * np.sin(2 * np.pi * t / 6.0)
    v[:, C["headPitch"]] = 4 * np.sin(2 * np.pi * t / 3.0)
    v[:, C["headRoll"]] = 5 * np.sin(2 * np.pi * t / 2.0)
    v[:, C["eyeLookX"]] = 0.6 * np.sin(2 * np.pi * t / 3.0)
    v[:, C["mouthSmile"]] = 0.5 * np.sin(2 * np.pi * t / 6.0)
    v[:, C["browInnerUp"]] = np.clip(np.sin(2 * np.pi * t / 3.0), 0, 1)
    return v


def _onsets(x: np.ndarray) -> np.ndarray:
    above = x > 0.5
    return np.where(above[1:] & ~above[:-1])[0] + 1


def main(argv: list[str] | None = None) -> int:
    from motion.types import CHANNELS
    from render.encoder import encode_frames
    from render.warp import WarpRenderer
    from talker.pipeline import Pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--face", default=None)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args(argv)
    v = known_track(int(args.seconds * FPS))
    r = WarpRenderer(Pipeline().prepare_avatar(args.face, (512, 512)).rig)
    e = encode_frames([r.render(row) for row in v], FPS).track.values
    print("| channel | r | mean abs error | max abs error | gain (slope) |")
    print("|---|---|---|---|---|")
    for c, name in enumerate(CHANNELS):
        a, b = v[:, c], e[:, c]
        if a.std() == 0:
            print(f"| {name} | (held at 0) | {np.abs(b).mean():.3f} | {np.abs(b).max():.3f} | |")
            continue
        r_ = np.corrcoef(a, b)[0, 1] if b.std() > 0 else float("nan")
        print(
            f"| {name} | {r_:.3f} | {np.abs(a - b).mean():.3f} | {np.abs(a - b).max():.3f} | "
            f"{np.polyfit(a, b, 1)[0]:.2f} |"
        )
    for eye in ("eyeBlinkLeft", "eyeBlinkRight"):
        c = CHANNELS.index(eye)
        want, got = _onsets(v[:, c]), _onsets(e[:, c])
        print(f"{eye}: blink onsets {want.tolist()} -> {got.tolist()} (frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
