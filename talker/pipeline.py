"""The offline path: words + portrait -> Speech -> MotionTrack -> frames -> MP4.

Components (TTS, landmark detector, motion generator) are passed in, so tests and servers can share
or swap them. Every stage is timed, for the benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio.features import frame_count
from audio.piper_tts import PiperTTS
from audio.types import Speech, concat_speech, pad_speech
from motion.generator import MotionGenerator, MotionStyle
from motion.types import MotionTrack
from render.frame import Frame
from render.landmarks import LandmarkDetector, MediaPipeFaceMesh
from render.rig import FaceRig, build_rig
from render.warp import WarpRenderer
from talker.mp4 import Mp4Writer
from talker.portrait import default_portrait_path, find_face, frame_portrait, load_image

DEFAULT_SIZE = (512, 512)
DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class RenderSettings:
    fps: float = DEFAULT_FPS
    size: tuple[int, int] | None = DEFAULT_SIZE
    seed: int = 0
    face_index: int | None = None
    crf: int = 20  # x264 quality: lower is better and bigger (0-51)
    style: MotionStyle = field(default_factory=MotionStyle)


@dataclass(frozen=True)
class Avatar:
    """A portrait framed to the output size and rigged once."""

    rig: FaceRig
    source: str

    @property
    def size(self) -> tuple[int, int]:
        return self.rig.size


@dataclass
class RenderResult:
    path: Path
    n_frames: int
    fps: float
    duration_s: float
    timings_s: dict[str, float]


class Pipeline:
    def __init__(self, tts: PiperTTS | None = None, detector: LandmarkDetector | None = None) -> None:
        self._tts = tts
        self._detector = detector

    @property
    def tts(self) -> PiperTTS:
        if self._tts is None:
            self._tts = PiperTTS()
        return self._tts

    @property
    def detector(self) -> LandmarkDetector:
        if self._detector is None:
            self._detector = MediaPipeFaceMesh()
        return self._detector

    def prepare_avatar(
        self,
        image: str | Path | np.ndarray | None = None,
        size: tuple[int, int] | None = DEFAULT_SIZE,
        face_index: int | None = None,
    ) -> Avatar:
        """Load (or take) a portrait, find the face, frame it to ``size`` and build its rig."""
        if image is None:
            image = default_portrait_path()
        if isinstance(image, np.ndarray):
            rgb, source = image, "the given image"
        else:
            rgb, source = load_image(image), str(image)
        face = find_face(rgb, self.detector, source, face_index)
        framed = frame_portrait(rgb, face, size)
        return Avatar(build_rig(framed.image, framed.face), source)

    def synthesize(self, text: str, lead_s: float = 0.3, tail_s: float = 0.4) -> Speech:
        """All of the text as one Speech (sentences synthesized in turn), with silence before and after."""
        chunks = [c.speech for c in self.tts.stream(text)]
        return pad_speech(concat_speech(chunks, text), lead_s, tail_s)

    @staticmethod
    def motion(speech: Speech, settings: RenderSettings) -> MotionTrack:
        return MotionGenerator(settings.fps, settings.seed, settings.style).generate(speech)

    @staticmethod
    def frames(avatar: Avatar, track: MotionTrack) -> Iterator[Frame]:
        renderer = WarpRenderer(avatar.rig)
        for k in range(track.n_frames):
            yield Frame(k, renderer.render(track.values[k]))

    def render_mp4(
        self,
        avatar: Avatar,
        speech: Speech,
        out: str | Path,
        settings: RenderSettings,
        progress: Callable[[int, int], None] | None = None,
        timings: dict[str, float] | None = None,
    ) -> RenderResult:
        """Render ``speech`` on ``avatar`` into an MP4 at ``out``; audio and video have equal length."""
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        track = self.motion(speech, settings)
        timings["motion"] = time.perf_counter() - t0
        n = track.n_frames
        sr = speech.sample_rate
        total_samples = int(round(n * sr / settings.fps))
        audio = np.zeros(total_samples, np.float32)
        audio[: min(len(speech.samples), total_samples)] = speech.samples[:total_samples]
        w, h = avatar.size
        t_render = 0.0
        t_encode = 0.0
        out = Path(out)
        tmp = out.with_name(f".{out.name}.part.mp4")
        try:
            with Mp4Writer(tmp, w, h, settings.fps, sr, crf=settings.crf) as writer:
                frames = self.frames(avatar, track)
                for k in range(n):
                    t1 = time.perf_counter()
                    frame = next(frames)
                    t2 = time.perf_counter()
                    a = int(round(k * sr / settings.fps))
                    b = int(round((k + 1) * sr / settings.fps))
                    writer.write_audio(audio[a:b])
                    writer.write_video(frame.image)
                    t3 = time.perf_counter()
                    t_render += t2 - t1
                    t_encode += t3 - t2
                    if progress is not None:
                        progress(k + 1, n)
                t4 = time.perf_counter()
            t_encode += time.perf_counter() - t4
            tmp.replace(out)
        finally:
            if tmp.exists():
                tmp.unlink()
        timings["render"] = t_render
        timings["encode"] = t_encode
        return RenderResult(out, n, settings.fps, n / settings.fps, timings)

    def render_text(
        self,
        text: str,
        out: str | Path,
        image: str | Path | np.ndarray | None = None,
        settings: RenderSettings | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RenderResult:
        """Text + portrait -> MP4, with per-stage timings in the result."""
        settings = settings or RenderSettings()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        avatar = self.prepare_avatar(image, settings.size, settings.face_index)
        timings["face"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        speech = self.synthesize(text)
        timings["tts"] = time.perf_counter() - t0
        assert frame_count(len(speech.samples), speech.sample_rate, settings.fps) >= 1
        return self.render_mp4(avatar, speech, out, settings, progress, timings)
