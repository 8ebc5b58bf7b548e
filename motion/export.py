"""MotionTrack export for 3D and game engines: JSON or CSV curves with ARKit blendshape names.

ARKit splits some of our channels by side (mouthSmile -> mouthSmileLeft/Right) and expresses gaze as
eyeLook{In,Out,Up,Down}{Left,Right} in 0..1; head rotation is given in degrees.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from motion.types import MotionTrack


def arkit_curves(track: MotionTrack) -> dict[str, np.ndarray]:
    """ARKit-named curves (frames,) from a MotionTrack."""
    c = track.channel
    smile = c("mouthSmile")
    gx = c("eyeLookX")  # + = looking to the subject's right... image right
    gy = c("eyeLookY")  # + = down
    out: dict[str, np.ndarray] = {
        "jawOpen": np.clip(c("jawOpen"), 0, 1),
        "mouthClose": np.clip(c("mouthClose") * c("jawOpen"), 0, 1),  # ARKit: lips closed despite open jaw
        "mouthFunnel": np.clip(c("mouthFunnel"), 0, 1),
        "mouthPucker": np.clip(c("mouthPucker"), 0, 1),
        "mouthStretchLeft": np.clip(c("mouthStretch"), 0, 1),
        "mouthStretchRight": np.clip(c("mouthStretch"), 0, 1),
        "mouthSmileLeft": np.clip(smile, 0, 1),
        "mouthSmileRight": np.clip(smile, 0, 1),
        "mouthFrownLeft": np.clip(-smile, 0, 1),
        "mouthFrownRight": np.clip(-smile, 0, 1),
        "mouthRollLower": np.clip(c("mouthRollLower"), 0, 1),
        "eyeBlinkLeft": np.clip(c("eyeBlinkLeft"), 0, 1),
        "eyeBlinkRight": np.clip(c("eyeBlinkRight"), 0, 1),
        "eyeWideLeft": np.clip(c("eyeWideLeft"), 0, 1),
        "eyeWideRight": np.clip(c("eyeWideRight"), 0, 1),
        "browInnerUp": np.clip(c("browInnerUp"), 0, 1),
        "browDownLeft": np.clip(c("browDown"), 0, 1),
        "browDownRight": np.clip(c("browDown"), 0, 1),
        # gaze to the image right = the subject's left eye looks out, the right eye looks in
        "eyeLookOutLeft": np.clip(gx, 0, 1),
        "eyeLookInRight": np.clip(gx, 0, 1),
        "eyeLookInLeft": np.clip(-gx, 0, 1),
        "eyeLookOutRight": np.clip(-gx, 0, 1),
        "eyeLookDownLeft": np.clip(gy, 0, 1),
        "eyeLookDownRight": np.clip(gy, 0, 1),
        "eyeLookUpLeft": np.clip(-gy, 0, 1),
        "eyeLookUpRight": np.clip(-gy, 0, 1),
        "headYaw": c("headYaw"),
        "headPitch": c("headPitch"),
        "headRoll": c("headRoll"),
    }
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def write_track(track: MotionTrack, path: str | Path) -> Path:
    """Write ``track`` as .json (``{"fps", "frames", "curves": {name: [...]}}``) or .csv (time + columns)."""
    p = Path(path)
    curves = arkit_curves(track)
    if p.suffix.lower() == ".json":
        doc = {
            "fps": track.fps,
            "frames": track.n_frames,
            "units": {"headYaw": "deg", "headPitch": "deg", "headRoll": "deg", "other": "0..1"},
            "curves": {k: [round(float(x), 4) for x in v] for k, v in curves.items()},
        }
        p.write_text(json.dumps(doc))
    elif p.suffix.lower() == ".csv":
        names = list(curves)
        with p.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time_s", *names])
            for k in range(track.n_frames):
                w.writerow([f"{k / track.fps:.4f}", *(f"{float(curves[n][k]):.4f}" for n in names)])
    else:
        raise ValueError(f"motion export {p}: use a .json or .csv file name")
    return p
