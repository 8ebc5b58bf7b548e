"""What shows inside an open mouth, measured the same way on filmed frames and on renders.

dlib's inner-lip points jump with small changes inside a wide-open mouth (see ``tools.quality``), so
they cannot tell whether a drawn mouth interior looks like a filmed one. This measures the pixels
themselves: mediapipe's face mesh finds the opening (the inner lip contour) in a frame, and inside it
this counts the share of teeth (bright, unsaturated), of dark cavity, and the brightness of its
brightest tenth, all relative to the cheeks' tone so that lighting and skin cancel out. Frames are
grouped by the lip gap (inter-ocular distances), since what shows depends on how wide the mouth is.

``python -m tools.mouthcheck --video talking.mp4`` prints a filmed speaker's rows and
``python -m tools.mouthcheck face.jpg`` those of a portrait's render over a jaw sweep.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from render import topology as T
from render.landmarks import FaceLandmarks, MediaPipeFaceMesh
from render.rig import eye_centres

if TYPE_CHECKING:
    from talker.pipeline import Pipeline

GAP_BINS: tuple[tuple[float, float], ...] = ((0.05, 0.12), (0.12, 0.2), (0.2, 0.3), (0.3, 0.45))
JAW_SWEEP = tuple(float(j) for j in np.linspace(0.1, 0.7, 13))
_CHEEKS = (205, 425)  # mesh points on the cheeks, beside the nose's wings


@dataclass(frozen=True)
class MouthInterior:
    """One frame's open mouth."""

    gap: float  # inner-lip gap over the inter-ocular distance
    teeth: float  # share of the opening's pixels that are teeth: at least 0.75 of the cheeks' lightness, unsaturated
    dark: float  # share that is dark cavity: under 0.3 of the cheeks' lightness
    brightness: float  # the opening's 90th-percentile lightness over the cheeks'


def mouth_interior(image: np.ndarray, face: FaceLandmarks) -> MouthInterior | None:
    """Measure the opening of ``face`` (mesh landmarks of ``image``, RGB); None when it is shut."""
    p = face.points[:, :2].astype(np.float64)
    eye_r, eye_l = eye_centres(p)
    iod = float(np.linalg.norm(eye_l[:2] - eye_r[:2]))  # as the rig measures it
    gap = float(np.linalg.norm(p[13] - p[14])) / max(iod, 1e-6)
    poly = np.concatenate([p[T.LIP_INNER_UPPER], p[T.LIP_INNER_LOWER][::-1]])
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], (1,))
    inside = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0  # not the lips' own edge
    if inside.sum() < 30:
        return None
    h, w = image.shape[:2]
    cheek = []
    for i in _CHEEKS:
        x, y = int(round(p[i, 0])), int(round(p[i, 1]))
        cheek.append(image[max(0, y - 2) : min(h, y + 3), max(0, x - 2) : min(w, x + 3)].reshape(-1, 3))
    skin = float(np.concatenate(cheek).astype(np.float64).mean())
    px = image[inside].astype(np.float64)
    lum = px.mean(axis=1)
    sat = px.max(axis=1) - px.min(axis=1)
    return MouthInterior(
        gap,
        float(((lum > 0.75 * skin) & (sat < 0.35 * lum)).mean()),
        float((lum < 0.3 * skin).mean()),
        float(np.percentile(lum, 90)) / max(skin, 1.0),
    )


def table(rows: Iterable[MouthInterior | None]) -> list[str]:
    """One line per lip-gap bin: how many frames, and their mean teeth share, dark share, brightness."""
    got = [r for r in rows if r is not None]
    out = []
    for lo, hi in GAP_BINS:
        b = [r for r in got if lo <= r.gap < hi]
        if not b:
            out.append(f"  gap {lo:.2f}-{hi:.2f}: no frames")
            continue
        out.append(
            f"  gap {lo:.2f}-{hi:.2f}: {len(b):3d} frames  teeth {np.mean([r.teeth for r in b]):.2f}  "
            f"dark {np.mean([r.dark for r in b]):.2f}  brightest tenth {np.mean([r.brightness for r in b]):.2f}"
        )
    return out


def measure_frames(frames: Iterable[np.ndarray], mesh: MediaPipeFaceMesh) -> list[MouthInterior | None]:
    """``mouth_interior`` of the largest face in each frame (None where no face or a shut mouth)."""
    out: list[MouthInterior | None] = []
    for f in frames:
        faces = mesh.detect(f)
        out.append(mouth_interior(f, max(faces, key=lambda x: x.area)) if faces else None)
    return out


def render_sweep(face: str | Path | np.ndarray, size: int = 512, pipeline: Pipeline | None = None) -> list[np.ndarray]:
    """A portrait's renders over ``JAW_SWEEP`` (no other motion)."""
    from render.warp import WarpRenderer
    from talker.pipeline import Pipeline
    from talker.sheet import pose_values

    avatar = (pipeline or Pipeline()).prepare_avatar(face, (size, size))
    r = WarpRenderer(avatar.rig)
    return [r.render(pose_values({"jawOpen": j})) for j in JAW_SWEEP]


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.mouthcheck [FACE...] [--video V]``: the open mouths of renders and of filmed video."""
    import argparse

    import av

    from talker.pipeline import Pipeline

    ap = argparse.ArgumentParser(prog="python -m tools.mouthcheck", description=main.__doc__)
    ap.add_argument("faces", nargs="*", help="portraits: their renders over a jaw sweep are measured")
    ap.add_argument("--video", action="append", default=[], help="a talking-face video (every second frame)")
    ap.add_argument("--max-frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args(argv)
    mesh = MediaPipeFaceMesh(max_faces=1)
    pipeline = Pipeline()  # one landmark detector for every portrait
    for face in args.faces:
        print(f"{Path(face).name} (render, jaw {JAW_SWEEP[0]:.1f}-{JAW_SWEEP[-1]:.1f})", flush=True)
        print("\n".join(table(measure_frames(render_sweep(face, args.size, pipeline), mesh))), flush=True)
    for v in args.video:
        with av.open(v) as c:
            frames = [
                f.to_ndarray(format="rgb24")
                for k, f in enumerate(c.decode(video=0))
                if k < args.max_frames and k % 2 == 0
            ]
        print(f"{Path(v).name} (filmed, {len(frames)} frames)", flush=True)
        print("\n".join(table(measure_frames(frames, mesh))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
