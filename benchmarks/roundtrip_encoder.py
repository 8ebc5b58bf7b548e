"""Motion encoder round trip: a known track rendered on a portrait, encoded back from the frames; the
error per channel. Then poses held one at a time (a nod, a turn, an open jaw with the head still) and
the head angles read back from each.

    python -m benchmarks.roundtrip_encoder [--face PORTRAIT | --face VIDEO --frame 30] [--seconds 6]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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


HELD = (("headPitch", 10.0), ("headPitch", -10.0), ("headYaw", 10.0), ("headYaw", -10.0), ("jawOpen", 0.8))
"""The poses held one at a time: a nod down and up, a turn either way, an open jaw with the head still."""


def held_track(ramp: int = 10, hold: int = 25, rest: int = 15) -> tuple[np.ndarray, list[slice]]:
    """(n, channels) rows: a second at rest, then each of ``HELD`` eased in, held, eased out and rested
    after; and per pose the frames of the second half of its hold (where the reading has settled)."""
    from motion.types import CHANNEL_INDEX as C
    from motion.types import CHANNELS

    up = np.arange(1, ramp + 1) / ramp
    blocks, spans, k = [np.zeros((25, len(CHANNELS)), np.float32)], [], 25
    for name, value in HELD:
        level = np.concatenate([up, np.ones(hold), up[::-1] - 1 / ramp, np.zeros(rest)]) * value
        b = np.zeros((len(level), len(CHANNELS)), np.float32)
        b[:, C[name]] = level
        spans.append(slice(k + ramp + hold // 2, k + ramp + hold))
        blocks.append(b)
        k += len(level)
    return np.concatenate(blocks), spans


def _portrait(face: str | None, frame: int) -> str | np.ndarray | None:
    """The portrait to render: an image file as it is, or frame ``frame`` of a video file."""
    from talker.video import read_frames

    if face is None or Path(face).suffix.lower() not in (".mp4", ".mov", ".mkv", ".webm", ".avi"):
        return face
    frames = list(read_frames(face, frame + 1))
    return frames[min(frame, len(frames) - 1)]


def _onsets(x: np.ndarray) -> np.ndarray:
    above = x > 0.5
    return np.where(above[1:] & ~above[:-1])[0] + 1


def main(argv: list[str] | None = None) -> int:
    from motion.types import CHANNELS
    from render.encoder import encode_frames
    from render.warp import WarpRenderer
    from talker.pipeline import Pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--face", default=None, help="a portrait, or a video (its frame --frame is the portrait)")
    ap.add_argument("--frame", type=int, default=30, help="the frame of a --face video to use")
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args(argv)
    v = known_track(int(args.seconds * FPS))
    r = WarpRenderer(Pipeline().prepare_avatar(_portrait(args.face, args.frame), (512, 512)).rig)
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
    held, spans = held_track()
    e = encode_frames([r.render(row) for row in held], FPS).track.values
    print("\n| held pose | yaw read | pitch read | roll read |")
    print("|---|---|---|---|")
    for (name, value), span in zip(HELD, spans):
        yaw, pitch, roll = (float(np.median(e[span, CHANNELS.index(c)])) for c in ("headYaw", "headPitch", "headRoll"))
        print(f"| {name} {value:+g} | {yaw:+.2f} | {pitch:+.2f} | {roll:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
