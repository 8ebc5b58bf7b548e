"""How wide a render's mouth reads for a given jaw channel, per portrait, by two landmark readers.

    python -m tools.mouth_gain FACE...

Each portrait is rigged at the default size and rendered with ``jawOpen`` over a sweep (every other
channel at rest); each frame's inner-lip gap is read by mediapipe's face mesh (``render.encoder.measure``,
as the motion encoder reads filmed speakers) and by dlib's 68 points (``tools.quality.inner_lip_gap``).
Printed: the gap the channel asks for and each reader's opening above its reading of the closed mouth,
in inter-ocular distances (IOD). The same channel should read about the same opening on every portrait.
"""

from __future__ import annotations

import sys

import numpy as np

from render.encoder import face_axes, measure
from render.rig import MAX_LIP_GAP_IOD
from render.warp import WarpRenderer
from talker.pipeline import Pipeline
from talker.sheet import pose_values
from tools.quality import Judge, inner_lip_gap

JAWS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6)


def sweep(path: str, pipeline: Pipeline, judge: Judge) -> list[tuple[float, float, float]]:
    """(asked, mediapipe, dlib) openings in IOD for each of ``JAWS`` (readers' openings above their
    reading at jawOpen 0; NaN where dlib finds no face)."""
    r = WarpRenderer(pipeline.prepare_avatar(path).rig)
    rows = []
    for jaw in JAWS:
        img = r.render(pose_values({"jawOpen": jaw}))
        pts = pipeline.detector.detect(img)[0].points.astype(np.float64)
        origin, axes, iod = face_axes(pts)
        mp = float(measure(((pts - origin) @ axes.T) / iod)[0])
        marks = judge.landmarks(img)
        dl = float("nan") if marks is None else inner_lip_gap(marks)
        rows.append((MAX_LIP_GAP_IOD * jaw, mp, dl))
    mp0, dl0 = rows[0][1], rows[0][2]
    return [(a, m - mp0, d - dl0) for a, m, d in rows]


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__)
        return 1
    pipeline, judge = Pipeline(), Judge()
    for p in paths:
        cells = " ".join(f"{a:.2f}:{m:.3f}/{d:.3f}" for a, m, d in sweep(p, pipeline, judge)[1:])
        print(f"{p}  asked:mediapipe/dlib  {cells}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
