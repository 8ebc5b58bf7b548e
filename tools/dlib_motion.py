"""Motion read by the independent dlib judge: inner-lip speed and opening, head roll and turn.

    python -m tools.dlib_motion VIDEO...

dlib's 68 landmarks (not the mediapipe mesh that drives the warp and the motion encoder) per frame:
inner-lip opening (``tools.quality.inner_lip_gap``, inter-ocular distances), its mean absolute change
per second over the speaking frames (loudness of the audio, ``motion.stats.speaking_mask_from_audio``),
the eye line's angle (roll, degrees) and the nose tip's offset from the eyes' midpoint (turn, IOD).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from audio.io import load_audio
from motion.stats import speaking_mask_from_audio
from talker.video import probe_video, read_frames
from tools.quality import inner_lip_gap


def read(path: str) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dlib
        import face_recognition_models as frm
    det = dlib.get_frontal_face_detector()
    shape = dlib.shape_predictor(frm.pose_predictor_model_location())
    info = probe_video(path)
    gap, roll, turn = [], [], []
    for img in read_frames(info.path):
        rects = det(img, 0) or det(img, 1)
        if not rects:
            gap.append(np.nan)
            roll.append(np.nan)
            turn.append(np.nan)
            continue
        r = max(rects, key=lambda r: r.width() * r.height())
        pts = np.array([(p.x, p.y) for p in shape(img, r).parts()], np.float64)
        re, le = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
        iod = float(np.linalg.norm(le - re))
        gap.append(inner_lip_gap(pts))
        roll.append(float(np.degrees(np.arctan2(le[1] - re[1], le[0] - re[0]))))
        axis = (le - re) / iod
        turn.append(float((pts[30] - 0.5 * (re + le)) @ axis / iod))
    g = np.array(gap)
    samples, sr = load_audio(info.path)
    speak = speaking_mask_from_audio(samples, sr, len(g), info.fps)
    d = np.abs(np.diff(g)) * info.fps
    both = speak[1:] & speak[:-1] & np.isfinite(d)
    return {
        "frames_with_face": float(np.isfinite(g).mean()),
        "lip_speed_iod_s": float(d[both].mean()),
        "lip_gap_p50_iod": float(np.nanmedian(g[speak])),
        "lip_gap_p90_iod": float(np.nanpercentile(g[speak], 90)),
        "roll_sd_deg": float(np.nanstd(np.array(roll)[speak])),
        "turn_sd_iod": float(np.nanstd(np.array(turn)[speak])),
    }


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__)
        return 1
    for p in paths:
        s = read(p)
        print(p, " ".join(f"{k} {v:.3f}" for k, v in s.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
