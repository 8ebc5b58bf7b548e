"""How well ``talker drive`` and ``talker dub`` follow real videos, read by an independent judge (dlib).

drive: each driving video x each portrait -> correlation of the output's mouth opening, eye aspect ratio
and head yaw / pitch proxies with the driver's, how far the output's proxies move per unit of the driver's
(its turn and nod size), and the output's face-embedding distance to the portrait. Then, per driver, how
large the encoder reads its nods against its turns, by dlib (``reader_pitch_share``).
dub: each video with a recording -> face found per frame, PSNR above the nose against the original,
embedding distance to the original frame, lip gap at the new speech's p/b/m.

    python -m benchmarks.eval_drive --videos ../shared/media/video/*.mp4 \
        --faces ../shared/media/faces/obama.jpg ... --speech ../shared/media/speech/jfk_inaugural_1961.wav
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def _pose_proxies(pts: np.ndarray) -> tuple[float, float]:
    """Yaw and pitch proxies from dlib's 68 points: the nose tip's offset from the eyes' midpoint, across
    and along the face, in inter-ocular distances."""
    le, re = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
    mid = 0.5 * (le + re)
    ex = (re - le) / np.linalg.norm(re - le)
    ey = np.array([-ex[1], ex[0]])
    iod = float(np.linalg.norm(re - le))
    d = pts[30] - mid
    return float(d @ ex / iod), float(d @ ey / iod)


def reader_pitch_share(frames: list[np.ndarray], fps: float, yaw_proxy: np.ndarray, pitch_proxy: np.ndarray):  # type: ignore[no-untyped-def]
    """How large the encoder reads a filmed head's nods against its turns, by an independent judge: dlib's
    nose offset per degree the encoder reads, along the face over across it, times the ratio the person's
    own 3-D shape (the encoder's neutral) gives those offsets for a nod and a turn of the same angle.
    1 when nods and turns are read alike. Returns (share, dlib across per yaw degree, dlib along per pitch
    degree, the shape's ratio)."""
    from scipy.spatial.transform import Rotation

    from render.encoder import encode_frames, face_axes

    enc = encode_frames(frames, fps)
    yaw, pitch = enc.track.channel("headYaw"), enc.track.channel("headPitch")
    s_yaw, s_pitch = abs(_slope(yaw, yaw_proxy)), abs(_slope(pitch, pitch_proxy))
    shots = enc.faces.shot[enc.faces.valid]
    shape = enc.neutrals[int(np.bincount(shots).argmax())].shape.astype(np.float64)
    origin, axes, _ = face_axes(shape)
    local = (shape - origin) @ axes.T

    def offsets(axis: str) -> tuple[float, float]:
        """dlib-like proxies (eye centres, nose tip) of the shape turned +10 and -10 degrees about ``axis``."""
        out = []
        for deg in (10.0, -10.0):
            q = Rotation.from_euler(axis, deg, degrees=True).apply(local)
            pts = np.zeros((68, 2))
            pts[36:42], pts[42:48], pts[30] = q[[33, 133], :2].mean(axis=0), q[[263, 362], :2].mean(axis=0), q[4, :2]
            out.append(_pose_proxies(pts))
        return abs(out[0][0] - out[1][0]), abs(out[0][1] - out[1][1])

    kappa = offsets("x")[1] / offsets("y")[0]
    return kappa * s_yaw / s_pitch, s_yaw, s_pitch, kappa


def _measure(judge, frames: list[np.ndarray]) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    from tools.quality import eye_aspect_ratio, inner_lip_gap

    out: dict[str, list[float]] = {"gap": [], "ear": [], "yaw": [], "pitch": []}
    emb: list[np.ndarray] = []
    for f in frames:
        a = judge.analyse(f)
        if a is None:
            for v in out.values():
                v.append(np.nan)
            emb.append(np.full(128, np.nan))
            continue
        pts, e = a
        out["gap"].append(inner_lip_gap(pts))
        out["ear"].append(eye_aspect_ratio(pts))
        yaw, pitch = _pose_proxies(pts)
        out["yaw"].append(yaw)
        out["pitch"].append(pitch)
        emb.append(e)
    res = {k: np.array(v) for k, v in out.items()}
    res["emb"] = np.array(emb)
    return res


def _r(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 3 else float("nan")


def _slope(a: np.ndarray, b: np.ndarray) -> float:
    """How far ``b`` moves per unit of ``a`` (least squares, frames where both are measured)."""
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.polyfit(a[ok], b[ok], 1)[0]) if ok.sum() > 3 else float("nan")


def eval_drive(videos: list[Path], faces: list[Path], size: int) -> None:
    from talker.drive import drive_portrait
    from talker.portrait import load_image
    from talker.video import probe_video, read_frames
    from tools.quality import Judge

    judge = Judge()
    readings = []
    print(
        "| driver | portrait | face found | r mouth | r EAR | r yaw | r pitch | yaw size | nod size "
        "| max emb dist to portrait |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for v in videos:
        frames = list(read_frames(v))
        drv = _measure(judge, frames)
        readings.append((v.name, reader_pitch_share(frames, probe_video(v).fps, drv["yaw"], drv["pitch"])))
        for face in faces:
            with tempfile.TemporaryDirectory() as d:
                res = drive_portrait(face, v, Path(d) / "drive.mp4", (size, size))
                out = _measure(judge, list(read_frames(res.path)))
            portrait = judge.analyse(load_image(face))
            dist = np.linalg.norm(out["emb"] - portrait[1], axis=1) if portrait is not None else np.array([np.nan])
            found = float(np.isfinite(out["gap"]).mean())
            print(
                f"| {v.name} | {face.name} | {found:.2f} | {_r(drv['gap'], out['gap']):.2f} | "
                f"{_r(drv['ear'], out['ear']):.2f} | {_r(drv['yaw'], out['yaw']):.2f} | "
                f"{_r(drv['pitch'], out['pitch']):.2f} | {_slope(drv['yaw'], out['yaw']):.2f} | "
                f"{_slope(drv['pitch'], out['pitch']):.2f} | {np.nanmax(dist):.3f} |",
                flush=True,
            )
    print("\n| driver | nods read against turns | dlib per yaw degree | dlib per pitch degree | shape's nod/turn |")
    print("|---|---|---|---|---|")
    for name, (share, s_yaw, s_pitch, kappa) in readings:
        print(f"| {name} | {share:.2f} | {s_yaw:.4f} | {s_pitch:.4f} | {kappa:.2f} |")


def eval_dub(videos: list[Path], speech: Path, transcript: str | None, lipsync: bool = False) -> None:
    from audio.align import align_file
    from render.landmarks import MediaPipeFaceMesh
    from talker.dub import DubSettings, dub_video
    from talker.video import read_frames
    from tools.quality import Judge

    judge = Judge()
    mesh = MediaPipeFaceMesh()
    sp = align_file(speech, transcript).speech  # (the phones p/b/m are scored on)
    if lipsync:  # the dub's mouth from the learned model, which hears only the recording
        from talker.dub import new_speech

        driven = new_speech(speech, None)[0]
    print("| video | speech | face found | min PSNR above nose (dB) | max emb dist to original | p/b/m closed |")
    print("|---|---|---|---|---|---|")
    for v in videos:
        with tempfile.TemporaryDirectory() as d:
            res = dub_video(v, driven if lipsync else sp, Path(d) / "dub.mp4", DubSettings(fit="cut"))
            dub = list(read_frames(res.path))
        src = list(read_frames(v))[: len(dub)]
        a, b = _measure(judge, src), _measure(judge, dub)
        found = float(np.isfinite(b["gap"]).mean())
        dist = np.linalg.norm(a["emb"] - b["emb"], axis=1)
        psnr = []
        for s, o in zip(src, dub):
            faces = mesh.detect(s)
            if not faces:
                continue
            y = int(faces[0].points[2, 1]) - 4
            mse = float(np.mean((s[:y].astype(float) - o[:y].astype(float)) ** 2))
            psnr.append(99.0 if mse == 0 else 10 * np.log10(255**2 / mse))
        closed, total = 0, 0
        for p in sp.phones:
            if p.symbol in ("P", "B", "M"):
                k = int((p.start_s + p.end_s) / 2 * res.fps)
                if k < len(dub):
                    total += 1
                    closed += int(np.isfinite(b["gap"][k]) and b["gap"][k] < 0.06)
        print(
            f"| {v.name} | {speech.name} | {found:.2f} | {min(psnr):.1f} | {np.nanmax(dist):.3f} | {closed}/{total} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", nargs="+", type=Path, required=True)
    ap.add_argument("--faces", nargs="*", type=Path, default=[])
    ap.add_argument("--speech", type=Path, default=None, help="a recording to dub the videos with")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument(
        "--lipsync", action="store_true", help="dub with the mouth from the learned model (no transcript given to it)"
    )
    args = ap.parse_args(argv)
    if args.faces:
        eval_drive(args.videos, args.faces, args.size)
    if args.speech:
        txt = args.speech.with_suffix(".txt")
        eval_dub(args.videos, args.speech, txt.read_text().strip() if txt.exists() else None, args.lipsync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
