"""Video avatars: a short clip of a person, prepared once, played as a loop whose mouth says new speech.

Preparing (``prepare_video_avatar``) reads the clip twice. The first pass tracks the face
(``render.face_track``), keeps the person's own open mouths by opening (``render.mouth_bank``) and
a thumbnail and pose per frame. The longest stretch with the face found, turned to the camera and no cut
is kept; in it, the loop's ends are chosen where the pose and picture match best and the last frames are
crossfaded into the first, so the loop plays round without a jump. The second pass frames the clip like a
portrait (``talker.portrait.framing_transform``) and writes the loop as an MP4 beside the landmarks, the
mouth bank and ``avatar.json``.

``talker.avatar_player`` plays it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from render import topology as T
from render.face_track import _thumb, track_faces
from render.landmarks import MEDIAPIPE_478, FaceLandmarks
from render.mouth_bank import BankCollector, MouthBank, lip_gap_iod
from render.redub import FrameLips, MouthRedrawer, closed_frame, frame_lips
from render.rig import RigError, eye_centres
from talker.paths import user_data_dir
from talker.portrait import DEFAULT_SIZE, FRAMINGS, framing_transform
from talker.video import VideoError, probe_video, read_frames

MIN_CLIP_S = 5.0
MAX_CLIP_S = 180.0
MIN_USABLE_S = 3.0  # the stretch with a steady, frontal face the loop is cut from
CROSSFADE_S = 0.4
TALKING_GAP = 0.06  # a clip whose lips part this far (IOD) in a tenth of its frames is talking, not listening
TURNED_AWAY = 0.45  # nose offset from the eyes' midpoint (inter-ocular distances): past it a face is turned away
FORMAT = 3
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_RIGID = sorted(set(T.NOSE_RIGID + T.FOREHEAD + [33, 133, 263, 362, 234, 454]))


class VideoAvatarError(ValueError):
    """A clip that cannot become a video avatar, or an avatar that does not exist; the message says why."""


@dataclass(frozen=True)
class VideoAvatarInfo:
    """What ``avatar.json`` records about a prepared video avatar."""

    name: str
    source: str  # the clip's file name
    fps: float
    size: tuple[int, int]  # (width, height) of the loop
    n_frames: int  # frames in the loop
    span_s: tuple[float, float]  # the stretch of the clip the loop comes from (seconds)
    crossfade: int  # frames of the loop's end blended into its start
    bank: int  # open mouths kept
    idle_mouth: str  # "own": the clip listens, frames as filmed; "shut": it talks, its mouth was shut into the loop
    prepare_s: float
    bytes: int  # on disk, all files
    notes: tuple[str, ...] = ()
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> VideoAvatarInfo:
        return VideoAvatarInfo(
            name=str(d["name"]),
            source=str(d["source"]),
            fps=float(d["fps"]),
            size=(int(d["size"][0]), int(d["size"][1])),
            n_frames=int(d["n_frames"]),
            span_s=(float(d["span_s"][0]), float(d["span_s"][1])),
            crossfade=int(d["crossfade"]),
            bank=int(d["bank"]),
            idle_mouth=str(d["idle_mouth"]),
            prepare_s=float(d["prepare_s"]),
            bytes=int(d["bytes"]),
            notes=tuple(str(n) for n in d.get("notes", ())),
            format=int(d.get("format", FORMAT)),
        )


def avatars_dir(data_dir: str | Path | None = None) -> Path:
    """Where video avatars are kept: ``avatars/`` in the data folder (``talker.paths.user_data_dir``)."""
    return (Path(data_dir) if data_dir is not None else user_data_dir()) / "avatars"


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise VideoAvatarError(
            f"avatar name {name!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return name


# --- preparing ------------------------------------------------------------------------------------


def _turned(points: np.ndarray) -> float:
    r, left = eye_centres(points)
    iod = float(np.linalg.norm((left - r)[:2]))
    return abs(float(points[T.NOSE_TIP, 0] - 0.5 * (r[0] + left[0]))) / max(iod, 1e-6)


def _longest_run(ok: np.ndarray, shot: np.ndarray) -> tuple[int, int]:
    """[first, end) of the longest run of ``ok`` frames within one shot."""
    best = (0, 0)
    start = 0
    for k in range(len(ok) + 1):
        if k == len(ok) or not ok[k] or shot[k] != shot[start]:
            if k - start > best[1] - best[0] and all(ok[start:k]):
                best = (start, k)
            start = k if k < len(ok) and ok[k] else k + 1
    return best


def loop_points(pose: np.ndarray, thumbs: np.ndarray, gaps: np.ndarray, fade: int) -> tuple[int, int]:
    """(first, end) of a loop within frames ``0..N``: frame ``end`` (shown after ``end - 1`` as the loop
    comes round, blended towards ``first``) matches frame ``first`` in pose (``pose`` (N, D), IOD units),
    picture (``thumbs`` (N, P) grey levels) and lip gap (``gaps`` (N,), IOD), and the loop is long.
    Needs N >= 2 * fade + 2."""
    n = len(pose)
    firsts = np.arange(0, max(1, int(0.25 * n)))
    ends = np.arange(max(int(0.6 * n), firsts[-1] + fade + 1), n - fade + 1)
    if len(ends) == 0:
        return 0, n - fade
    step = max(1, len(firsts) * len(ends) // 400_000)
    firsts = firsts[::step]
    best, pick = np.inf, (0, int(ends[-1]))
    for a in firsts:
        cost = (
            np.abs(pose[ends] - pose[a]).mean(axis=1) / 0.02
            + np.abs(thumbs[ends] - thumbs[a]).mean(axis=1) / 2.0
            + np.abs(gaps[ends] - gaps[a]) / 0.02
            + 2.0 * (1.0 - (ends - a) / n)
        )
        j = int(np.argmin(cost))
        if cost[j] < best:
            best, pick = float(cost[j]), (int(a), int(ends[j]))
    return pick


class _Yuv420Writer:
    """Video-only H.264 (yuv420p) from I420 frames: the loop is an input, so unlike ``talker.mp4.Mp4Writer`` it
    has no audio and no provenance marks (every output made from it carries its own)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, crf: int = 14) -> None:
        import av

        self._av = av
        self._c = av.open(str(path), mode="w")
        self._s = self._c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._s.width, self._s.height = size
        self._s.pix_fmt = "yuv420p"
        # no B-frames: the loop's last frame is coded as well as its first, so the seam shows no codec step
        self._s.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
        self._n = 0

    def write(self, yuv: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(yuv), format="yuv420p")
        frame.pts = self._n
        self._n += 1
        for pkt in self._s.encode(frame):
            self._c.mux(pkt)

    def close(self) -> None:
        for pkt in self._s.encode():
            self._c.mux(pkt)
        self._c.close()


def _save_bank(path: Path, bank: MouthBank) -> None:
    arrays: dict[str, np.ndarray] = {"gaps": np.array([m.gap for m in bank.samples], np.float32)}
    for k, m in enumerate(bank.samples):
        arrays[f"image_{k}"] = m.image
        arrays[f"points_{k}"] = m.points.astype(np.float32)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def prepare_video_avatar(
    video: str | Path,
    name: str,
    data_dir: str | Path | None = None,
    size: tuple[int, int] | None = DEFAULT_SIZE,
    framing: str = "bust",
    face_index: int | None = None,
    replace: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> VideoAvatarInfo:
    """Prepare a clip (5 s to 3 min) as the video avatar ``name`` in ``avatars_dir(data_dir)``: framed to
    ``size`` by ``framing`` (as portraits are; ``size`` None keeps the clip's own frame), the face chosen
    by ``face_index`` (left to right; default the largest). ``progress(stage, share done)``. Raises
    ``VideoAvatarError`` / ``VideoError`` / ``VideoFaceError`` with what is wrong with the clip."""
    t_start = time.perf_counter()
    check_name(name)
    if framing not in FRAMINGS:
        raise VideoAvatarError(f"framing {framing!r} is not one of {', '.join(FRAMINGS)}")
    root = avatars_dir(data_dir)
    final = root / name
    if final.exists() and not replace:
        raise VideoAvatarError(f"a video avatar named {name!r} exists; delete it or choose another name")
    info = probe_video(video, MAX_CLIP_S + 1.0)
    duration = info.n_frames / info.fps
    if info.n_frames <= 1:
        raise VideoAvatarError(f"{info.path.name} is a still image; a video avatar needs a clip of 5 s to 3 min")
    if duration < MIN_CLIP_S:
        raise VideoAvatarError(f"{info.path.name} lasts {duration:.1f} s; a video avatar needs a clip of 5 s to 3 min")
    if duration > MAX_CLIP_S:
        raise VideoAvatarError(f"{info.path.name} lasts {duration:.0f} s; a video avatar needs a clip of 5 s to 3 min")
    fps = info.fps
    report = progress or (lambda stage, share: None)

    # pass 1: the face through the clip, the mouth bank, a thumbnail per frame
    thumbs: list[np.ndarray] = []
    collector = BankCollector()
    expected = max(info.n_frames, 1)

    def frames() -> Iterator[np.ndarray]:
        for k, image in enumerate(read_frames(info.path)):
            thumbs.append(_thumb(image).ravel())
            if k % 25 == 0:
                report("track", min(1.0, k / expected))
            yield image

    faces = track_faces(frames(), fps, face_index, on_face=collector.offer)
    n = faces.n_frames
    turned = np.array([_turned(p) if v else np.inf for p, v in zip(faces.points, faces.valid)])
    ok = faces.valid & (turned < TURNED_AWAY)
    first, end = _longest_run(ok, faces.shot)
    fade = max(2, int(round(CROSSFADE_S * fps)))
    notes: list[str] = []
    if (end - first) / fps < MIN_USABLE_S:
        lost = int((~faces.valid).sum())
        away = int((faces.valid & ~ok).sum())
        cuts = int(faces.shot.max())
        raise VideoAvatarError(
            f"the face is steady and towards the camera for at most {(end - first) / fps:.1f} s at a stretch "
            f"(needs {MIN_USABLE_S:g} s): {lost} frames without a face, {away} with the face turned away, "
            f"{cuts} cut(s)"
        )
    if first > 0 or end < n:
        why = []
        if (~faces.valid).any():
            why.append(f"{int((~faces.valid).sum())} frames without a face")
        if (faces.valid & ~ok).any():
            why.append(f"{int((faces.valid & ~ok).sum())} with the face turned away")
        if faces.shot.max() > 0:
            why.append(f"{int(faces.shot.max())} cut(s)")
        notes.append(
            f"uses {first / fps:.1f}-{end / fps:.1f} s of the clip, its longest stretch with a steady face "
            f"({', '.join(why) or 'the rest differs'})"
        )
    pts = faces.points[first:end].astype(np.float64)
    iods = np.array([np.linalg.norm(np.subtract(*eye_centres(p))[:2]) for p in pts])
    iod = float(np.median(iods))
    pose = (pts[:, _RIGID, :2] / iod).reshape(len(pts), -1)
    gaps = np.array([lip_gap_iod(p) for p in pts])
    talking = float(np.percentile(gaps, 90)) > TALKING_GAP
    if talking:
        notes.append("the clip's mouth moves as if speaking: the loop's mouth is redrawn shut, to open with speech")
    # a talking clip's own mouth is never shown, so its opening does not matter for the loop's ends
    a, e = loop_points(pose, np.asarray(thumbs[first:end], np.float32), gaps * (not talking), fade)
    a, e = a + first, e + first  # the loop: frames a .. e-1, frames e .. e+fade-1 blended into a ..

    # framing: the median face of the loop
    mid = np.median(faces.points[a:e], axis=0).astype(np.float32)
    face = FaceLandmarks(mid, MEDIAPIPE_478, faces.size)
    if size is None:
        left, top, sx, sy = 0.0, 0.0, 1.0, 1.0
        out = (faces.size[0] - faces.size[0] % 2, faces.size[1] - faces.size[1] % 2)
    else:
        left, top, sx, sy, out = framing_transform(faces.size, face, size, framing)
    m = np.array([[sx, 0, -left * sx], [0, sy, -top * sy]], np.float64)
    interp = cv2.INTER_AREA if min(sx, sy) < 1 else cv2.INTER_CUBIC

    def framed(p: np.ndarray) -> np.ndarray:
        q = p.astype(np.float64).copy()
        q[:, 0] = p[:, 0] * sx - left * sx
        q[:, 1] = p[:, 1] * sy - top * sy
        q[:, 2] = p[:, 2] * 0.5 * (sx + sy)
        return q

    # pass 2: the loop, in play order from frame a+fade: a+fade .. e-1, then the crossfade (e+i into a+i)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        writer = _Yuv420Writer(tmp / "loop.mp4", out, fps)
        head: list[np.ndarray] = []
        lips: list[FrameLips] = []  # per loop frame: inner lips snapped, lip and cheek colours
        fade_pts: list[np.ndarray] = []
        shutter: MouthRedrawer | None = None
        several = 0
        for k, image in enumerate(read_frames(info.path, e + fade)):
            if k < a:
                continue
            if k % 25 == 0:
                report("write", min(1.0, (k - a) / max(1, e + fade - a)))
            if k == (a + e) // 2:
                several = _count_faces(image)
            rgb = cv2.warpAffine(image, m, out, flags=interp, borderMode=cv2.BORDER_REPLICATE)
            p = framed(faces.points[k])
            if k < a + fade:
                head.append(rgb)
                fade_pts.append(p)
                continue
            if k >= e:
                i = k - e
                t = i / (fade - 1)
                w = t * t * (3.0 - 2.0 * t)  # from frame e (0) to frame a+fade-1 (1): both ends continuous
                rgb = cv2.addWeighted(rgb, 1.0 - w, head[i], w, 0.0)
                p = (1.0 - w) * p + w * fade_pts[i]
            measured = frame_lips(rgb, p)
            if talking:
                # the mouth shut into the loop once here, so silent frames play as stored
                if shutter is None:
                    # the clip's own closed mouth, where it shows one, is the shape the shut mouth takes
                    rest = closed_frame(faces.points[first:end])
                    shutter = MouthRedrawer(
                        rgb, measured.points, rest=None if rest is None else framed(faces.points[first + rest])
                    )
                try:
                    got = shutter.shut(rgb, p, measured)
                except RigError:
                    got = None
                if got is not None:
                    rgb = got[0]
                    measured = frame_lips(rgb, got[1])
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420))
            lips.append(measured)
        writer.close()
        if len(lips) != e - a:
            raise VideoError(f"{info.path} ended early on the second read ({a + len(lips) + fade} frames)")
        if several > 1:
            notes.append(
                f"the clip shows {several} faces; the avatar is "
                + ("the largest" if face_index is None else f"face {face_index} from the left")
            )
        np.savez_compressed(
            tmp / "track.npz",
            points=np.stack([f.points for f in lips]).astype(np.float32),
            lip_rgb=np.stack([f.lip_rgb for f in lips]),
            skin_rgb=np.stack([f.skin_rgb for f in lips]),
        )
        bank = collector.bank()
        _save_bank(tmp / "bank.npz", bank)
        used = sum(f.stat().st_size for f in tmp.iterdir())
        meta = VideoAvatarInfo(
            name=name,
            source=info.path.name,
            fps=fps,
            size=out,
            n_frames=e - a,
            span_s=(a / fps, (e + fade) / fps),
            crossfade=fade,
            bank=len(bank),
            idle_mouth="shut" if talking else "own",
            prepare_s=round(time.perf_counter() - t_start, 2),
            bytes=used,
            notes=tuple(notes),
        )
        (tmp / "avatar.json").write_text(json.dumps(meta.to_json(), indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report("done", 1.0)
    return meta


def _count_faces(image: np.ndarray) -> int:
    from render.landmarks import MediaPipeFaceMesh

    mesh = MediaPipeFaceMesh()
    try:
        return len(mesh.detect(image))
    finally:
        mesh.close()


# --- stored avatars -------------------------------------------------------------------------------


def list_video_avatars(data_dir: str | Path | None = None) -> list[VideoAvatarInfo]:
    root = avatars_dir(data_dir)
    found = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        meta = d / "avatar.json"
        if not d.name.startswith(".") and meta.is_file():
            try:
                found.append(VideoAvatarInfo.from_json(json.loads(meta.read_text())))
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                continue  # damaged or from another version: `talker avatar create --replace` makes it again
    return found


def delete_video_avatar(name: str, data_dir: str | Path | None = None) -> None:
    folder = avatars_dir(data_dir) / check_name(name)
    if not (folder / "avatar.json").is_file():
        raise VideoAvatarError(f"no video avatar named {name!r}")
    shutil.rmtree(folder)
