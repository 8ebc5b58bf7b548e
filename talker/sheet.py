"""Contact sheets: the key poses of the warp renderer for one or more portraits, as one PNG.

Columns: the framed portrait (the whole output frame), then face crops of rest (lips closed), blink, open
vowel (AA), bilabial (lips pressed), f/v, rounded (OO), smile, head turn, head tilt.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from motion.types import CHANNEL_INDEX, CHANNELS
from render.warp import WarpRenderer
from talker.pipeline import Pipeline

POSES: list[tuple[str, dict[str, float]]] = [
    ("rest", {}),
    ("blink", {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}),
    ("wide eyes", {"eyeWideLeft": 1.0, "eyeWideRight": 1.0, "browInnerUp": 0.6}),
    ("AA", {"jawOpen": 0.65, "mouthStretch": 0.1}),
    ("P/B/M", {"jawOpen": 0.05, "mouthClose": 1.0}),
    ("F/V", {"jawOpen": 0.1, "mouthRollLower": 1.0}),
    ("OO", {"jawOpen": 0.18, "mouthPucker": 0.9, "mouthFunnel": 0.4}),
    ("smile", {"jawOpen": 0.25, "mouthSmile": 0.8}),
    ("yaw 15", {"headYaw": 15.0, "jawOpen": 0.3}),
    ("pitch 10 roll 8", {"headPitch": 10.0, "headRoll": 8.0, "eyeLookX": 0.8}),
]


def pose_values(spec: dict[str, float]) -> np.ndarray:
    v = np.zeros(len(CHANNELS), np.float32)
    for k, x in spec.items():
        v[CHANNEL_INDEX[k]] = x
    return v


def contact_sheet(
    faces: list[str | Path], out: str | Path, size: int = 512, tile: int = 256, crop_face: bool = True
) -> Path:
    """Render every pose for every portrait into one PNG (rows = portraits)."""
    p = Pipeline()
    rows = []
    for f in faces:
        avatar = p.prepare_avatar(f, (size, size))
        r = WarpRenderer(avatar.rig)
        frames = [("framed", avatar.rig.image)] + [(name, r.render(pose_values(spec))) for name, spec in POSES]
        if crop_face:
            v = avatar.rig.verts[: avatar.rig.n_landmarks, :2]
            cx, cy = v.mean(axis=0)
            # a face filling the frame gets the whole frame (a crop larger than it would start off the image)
            half = min(0.75 * float(max(np.ptp(v[:, 0]), np.ptp(v[:, 1]))), size / 2)
            x0 = int(np.clip(cx - half, 0, size - 2 * half))
            y0 = int(np.clip(cy - half, 0, size - 2 * half))
            crop = (slice(y0, y0 + int(2 * half)), slice(x0, x0 + int(2 * half)))
        tiles = []
        for name, img in frames:
            t = img[crop] if crop_face and name != "framed" else img  # the first tile: the whole output frame
            t = cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA).copy()
            cv2.putText(t, name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(t, name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(t)
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet[:, :, ::-1])
    return out
