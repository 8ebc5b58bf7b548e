"""Dubbing: a video of a face + new speech -> the same video with the lips moving to the new speech.

Two passes over the video. The first tracks the face (``render.encoder``): landmarks per frame, shots,
bridged losses. The second re-renders the mouth region of each frame (``render.redub``) to the mouth
channels made from the new speech (by the phonetic motion generator from its phones, or by the learned
lip-sync model from a recording without them), and encodes it with the new audio.
Everything above the nose and outside the face is the frame's own; frames without a face pass through.

When the speech and the video differ in length, ``fit`` decides (``FIT_POLICIES``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from audio.features import frame_count
from audio.types import Speech, concat_speech, silence
from motion.generator import MotionGenerator
from motion.types import CHANNEL_INDEX
from render import i420
from render.face_track import FaceTrack, track_faces
from render.mouth_bank import BankCollector, MouthBank
from render.redub import MOUTH_CHANNELS, MouthRedrawer, closed_frame
from render.rig import RigError
from talker.mp4 import frame_audio, mp4_output
from talker.video import VideoError, VideoInfo, probe_video, read_frames, read_i420, read_i420_rgb

FIT_POLICIES = ("loop", "pingpong", "hold", "cut")
"""loop / pingpong / hold: the output lasts as long as the longer of speech and video; a shorter video is
repeated, played back and forth, or its last frame held; shorter speech is followed by silence with the
mouth at rest. cut: the output ends with the shorter of the two."""
MAX_CACHED_BYTES = 1_500_000_000
"""pingpong keeps the decoded frames in memory; a video larger than this must use another policy."""


@dataclass(frozen=True)
class DubSettings:
    fit: str = "loop"
    face_index: int | None = None
    seed: int = 0
    crf: int = 17  # x264 quality (lower is better): the source's own pixels are compressed a second time
    preset: str = "ultrafast"  # x264 speed: the fastest, its larger files kept as sharp by the low crf
    cache_bytes: int = 600_000_000  # a video whose frames fit is decoded once and kept, else decoded twice
    mouth_bank: bool = True  # openings wider than a frame's own show the person's own mouth from other frames

    def __post_init__(self) -> None:
        if self.fit not in FIT_POLICIES:
            raise ValueError(f"fit policy {self.fit!r}: use one of {', '.join(FIT_POLICIES)}")


@dataclass
class DubResult:
    path: Path
    n_frames: int
    fps: float
    duration_s: float
    face_share: float  # share of output frames whose mouth was redrawn
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def output_frames(n_video: int, n_speech: int, fit: str) -> int:
    """How many frames the dub has, for a video and speech of these lengths (frames)."""
    return min(n_video, n_speech) if fit == "cut" else max(n_video, n_speech)


def source_frame(k: int, n_video: int, fit: str) -> int:
    """The video frame shown at output frame ``k``."""
    if k < n_video:
        return k
    if fit == "loop":
        return k % n_video
    if fit == "pingpong":
        period = max(1, 2 * n_video - 2)
        j = k % period
        return j if j < n_video else period - j
    return n_video - 1


def _frames_in_order(
    path: Path,
    n_out: int,
    n_video: int,
    fit: str,
    info: VideoInfo,
    read: Callable[[Path, int], Iterator[np.ndarray]] = read_frames,
) -> Iterator[np.ndarray]:
    """The video frame for each output frame (as ``read`` gives them), decoded as few times as the policy
    allows."""
    if fit == "pingpong" and n_out > n_video:
        if n_video * info.width * info.height * 3 > MAX_CACHED_BYTES:
            raise VideoError(
                f"{path} is too long to play back and forth in memory ({n_video} frames of {info.width}x"
                f"{info.height}); use --fit loop or hold"
            )
        cache = list(read(path, n_video))
        for k in range(n_out):
            yield cache[source_frame(k, n_video, fit)]
        return
    k = 0
    last: np.ndarray | None = None
    while k < n_out:
        for image in read(path, n_video):
            yield image
            last = image
            k += 1
            if k >= n_out:
                return
        if fit != "loop":
            break
    assert last is not None
    while k < n_out:
        yield last
        k += 1


_DONE = object()
_T = TypeVar("_T")


def prefetch(items: Iterable[_T], depth: int = 4) -> Iterator[_T]:
    """``items`` produced by a worker thread (decoding releases the GIL), at most ``depth`` ahead; an error
    in the worker is raised here."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, name="dub-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()


def new_speech(
    audio: str | Path | None, text: str | None, voice_id: str | None = None, align: bool = False
) -> tuple[Speech, tuple[str, ...]]:
    """The new speech of a dub and notes about it: a recording force-aligned to its transcript (``text``),
    a recording alone (no phones: the learned lip-sync model reads its mouth from the sound, any
    language; ``align``: pocketsphinx's English recognition instead), or ``text`` spoken by ``voice_id``
    (default voice) with a short lead-in and tail. Raises ``ValueError`` naming what is missing or
    contradictory."""
    if audio is not None:
        if voice_id:
            raise ValueError("a voice is chosen for text; with a recording the recording is the voice")
        if not text and not align:
            from audio.io import load_audio

            samples, sr = load_audio(str(audio))
            return Speech(samples, sr, ()), ("mouth driven by the learned lip-sync model",)
        from audio.align import align_file

        aligned = align_file(audio, text or None)
        return aligned.speech, tuple(aligned.notes)
    if align:
        raise ValueError("align recognises the phones of a recording: give one, or text to synthesize")
    if not text:
        raise ValueError("give the new speech: a recording (with its transcript as text, optional), or text")
    from audio.voices import DEFAULT_VOICE_ID, make_tts, synthesize

    said = synthesize(make_tts(voice_id or DEFAULT_VOICE_ID), text)
    sr = said.sample_rate
    return concat_speech([silence(0.2, sr), said, silence(0.3, sr)], text), ()


def speech_frames(speech: Speech, fps: float) -> int:
    return frame_count(len(speech.samples), speech.sample_rate, fps)


def dub_video(
    video: str | Path,
    speech: Speech,
    out: str | Path,
    settings: DubSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DubResult:
    """Re-sync the lips of the face in ``video`` to ``speech`` and write an MP4 to ``out`` (the file
    appears only when complete). Raises ``VideoError`` / ``VideoFaceError`` for unusable input."""
    s = settings or DubSettings()
    timings: dict[str, float] = {}
    info = probe_video(video)
    path = info.path
    fps = info.fps
    w, h = info.width - info.width % 2, info.height - info.height % 2
    t0 = time.perf_counter()
    collector = BankCollector() if s.mouth_bank else None
    # the first pass keeps the decoded frames when they fit, so the second need not decode them again
    cache: list[np.ndarray] | None = [] if max(info.n_frames, 1) * w * h * 3 // 2 <= s.cache_bytes else None

    def tracked_frames() -> Iterator[np.ndarray]:
        nonlocal cache
        for yuv, rgb in prefetch(read_i420_rgb(path)):
            if cache is not None:
                cache.append(yuv)
                if len(cache) * yuv.nbytes > s.cache_bytes:  # longer than the container said
                    cache = None
            yield rgb

    faces = track_faces(tracked_frames(), fps, s.face_index, on_face=collector.offer if collector else None)
    bank = collector.bank() if collector else None
    timings["track"] = time.perf_counter() - t0
    n_video = faces.n_frames
    n_speech = speech_frames(speech, fps)
    if n_speech == 0:
        raise ValueError("the new speech is empty")
    n_out = output_frames(n_video, n_speech, s.fit)
    learned = not speech.phones  # (a recording alone: its mouth from the lip-sync model, padded or not)
    # the audio: the speech, cut or followed by silence to exactly n_out frames
    want = int(round(n_out * speech.sample_rate / fps))
    if len(speech.samples) < want:
        speech = concat_speech([speech, silence((want - len(speech.samples)) / speech.sample_rate, speech.sample_rate)])
    samples = speech.samples[:want].astype(np.float32)
    t0 = time.perf_counter()
    mouth = _mouth(speech, n_out, fps, s.seed, learned)
    timings["motion"] = time.perf_counter() - t0

    redrawn = 0
    t_render = t_encode = t_decode = 0.0
    redrawers: dict[int, MouthRedrawer] = {}
    sr = speech.sample_rate
    if cache is not None and len(cache) == n_video:
        kept = cache
        frames: Iterator[np.ndarray] = (kept[source_frame(k, n_video, s.fit)] for k in range(n_out))
    else:
        cache = None
        frames = prefetch(_frames_in_order(path, n_out, n_video, s.fit, info, read_i420))
    with mp4_output(out, w, h, fps, sr, crf=s.crf, preset=s.preset) as sink:
        for k in range(n_out):
            t0 = time.perf_counter()
            yuv = next(frames).copy()  # written in place; a cached or held frame is shown again
            t_decode += time.perf_counter() - t0
            j = source_frame(k, n_video, s.fit)
            t0 = time.perf_counter()
            redrawn += _redraw(yuv, (w, h), faces, j, mouth[k], redrawers, bank)
            t_render += time.perf_counter() - t0
            t0 = time.perf_counter()
            sink.put(frame_audio(samples, k, sr, fps), yuv)
            t_encode += time.perf_counter() - t0
            if progress is not None:
                progress(k + 1, n_out)
    # decode and encode run beside the redraw: their figures are the time the redraw waited for them
    timings.update(decode_wait=t_decode, redraw=t_render, encode_wait=t_encode)
    notes = []
    lost = n_out - redrawn
    if lost:
        notes.append(f"{lost} of {n_out} frames had no trackable face and were kept as they were")
    return DubResult(Path(out), n_out, fps, n_out / fps, redrawn / n_out, timings, tuple(notes))


def _mouth(speech: Speech, n: int, fps: float, seed: int, learned: bool) -> np.ndarray:
    """The new speech's mouth channels (``MOUTH_CHANNELS``) for ``n`` frames: from its phones, or
    (``learned``: a recording without them) from the learned lip-sync model."""
    if not learned:
        values = MotionGenerator(fps, seed).generate(speech, n).values
    else:
        from motion.audio_motion import audio_motion
        from motion.lipsync import LipsyncModel

        values = audio_motion(LipsyncModel.load(), speech.samples, speech.sample_rate, fps, seed)
        if len(values) < n:  # (the audio ends inside the last frame: its mouth at rest)
            values = np.concatenate([values, np.zeros((n - len(values), values.shape[1]), values.dtype)])
    return values[:n, [CHANNEL_INDEX[c] for c in MOUTH_CHANNELS]]


def _redraw(
    yuv: np.ndarray,
    size: tuple[int, int],
    faces: FaceTrack,
    j: int,
    mouth: np.ndarray,
    redrawers: dict[int, MouthRedrawer],
    bank: MouthBank | None,
) -> bool:
    """Redraw the mouth of I420 frame ``yuv`` (video frame ``j``) in place; False when its face cannot be
    tracked or rigged (the frame is kept as it is)."""
    if not faces.valid[j]:
        return False
    points = faces.points[j]
    shot = int(faces.shot[j])
    try:
        if shot not in redrawers:
            # the shot's own closed mouth, where it shows one, is the shape closing an open one returns to
            in_shot = np.flatnonzero((faces.shot == shot) & faces.found)
            rest = closed_frame(faces.points[in_shot])
            redrawers[shot] = MouthRedrawer(
                np.asarray(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)),
                points,
                bank,
                rest=None if rest is None else faces.points[in_shot[rest]],
            )
        i420.redraw_mouth(yuv, redrawers[shot], points, mouth)
    except RigError:
        return False
    return True
