"""The offline path: words + portrait -> Speech -> MotionTrack -> frames -> MP4.

Components (a voice, a landmark detector, a motion model, a renderer, each typed by a small Protocol)
are passed in, so tests and servers can share or swap them. Every stage is timed, for the benchmark.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audio.align import align_file
from audio.features import frame_count
from audio.io import load_audio
from audio.piper_tts import PiperTTS
from audio.text import clean_text
from audio.types import TTS, Speech, concat_speech, silence
from motion.audio_motion import AudioMotionStream
from motion.generator import MotionStream, MotionStyle
from motion.lipsync import LipsyncModel
from motion.types import MotionModel, MotionSource, MotionTrack
from render.frame import Frame, Renderer
from render.landmarks import LandmarkDetector, MediaPipeFaceMesh
from render.warp import WarpRenderer
from talker.mp4 import DEFAULT_CRF, mp4_output
from talker.portrait import DEFAULT_SIZE, Avatar, default_portrait_path

if TYPE_CHECKING:
    from talker.avatar_player import VideoAvatar

DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class RenderSettings:
    fps: float = DEFAULT_FPS
    size: tuple[int, int] | None = DEFAULT_SIZE
    seed: int = 0
    face_index: int | None = None
    crf: int = DEFAULT_CRF  # x264 quality: lower is better and bigger (0-51)
    style: MotionStyle = field(default_factory=MotionStyle)
    face_points: str | None = None  # five guide points "x,y;..." for a face the detector cannot find
    label: str | None = None  # visible disclosure drawn on every frame (``talker.provenance.Label``)
    framing: str = "bust"  # bust, head or source (``talker.portrait.FRAMINGS``)


@dataclass(frozen=True)
class AVFrame:
    """A rendered frame and the audio samples that play during it."""

    frame: Frame
    audio: np.ndarray
    sample_rate: int


@dataclass
class RenderResult:
    path: Path
    n_frames: int
    fps: float
    duration_s: float
    timings_s: dict[str, float]
    notes: tuple[str, ...] = ()  # what the user should know (how a recording was aligned)


class Pipeline:
    """Words + portrait -> MP4 with the given components: ``tts`` (a ``TTS``, default the Piper voice
    ``joe``), ``detector`` (a ``LandmarkDetector``, default mediapipe's face mesh), ``motion_model`` (a
    ``MotionModel``, default ``MotionStream``), ``renderer`` (a ``Renderer``, default ``WarpRenderer``) and
    ``lipsync`` (audio -> mouth for recordings without a transcript, default the model shipped in
    ``motion/assets/lipsync``). Models load on first use."""

    def __init__(
        self,
        tts: TTS | None = None,
        detector: LandmarkDetector | None = None,
        lipsync: LipsyncModel | None = None,
        *,
        motion_model: MotionModel = MotionStream,
        renderer: Renderer = WarpRenderer,
    ) -> None:
        self._tts = tts
        self._detector = detector
        self._lipsync = lipsync
        self.motion_model = motion_model
        self.renderer = renderer

    @property
    def lipsync(self) -> LipsyncModel:
        if self._lipsync is None:
            self._lipsync = LipsyncModel.load()
        return self._lipsync

    @property
    def tts(self) -> TTS:
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
        points: str | None = None,
        framing: str = "bust",
    ) -> Avatar:
        """Load (or take) a portrait, find the face (or place it by five guide ``points``), frame it to
        ``size`` by ``framing`` (bust, head or source: ``talker.portrait.FRAMINGS``) and build its rig.
        When no face is found, the error says how to give points."""
        from talker.points import avatar_for

        path = default_portrait_path() if image is None else image
        return avatar_for(path, points, self.detector, size, face_index, framing)

    def _face(
        self, image: str | Path | np.ndarray | VideoAvatar | None, settings: RenderSettings
    ) -> tuple[Avatar | VideoAvatar, RenderSettings]:
        """The face to render on (a portrait, framed and rigged, or a video avatar at its own size and frame
        rate) and the settings it renders with."""
        from talker.avatar_player import VideoAvatar

        if isinstance(image, VideoAvatar):
            return image, replace(settings, fps=image.fps, size=image.size)
        avatar = self.prepare_avatar(image, settings.size, settings.face_index, settings.face_points, settings.framing)
        return avatar, settings

    def synthesize(self, text: str, lead_s: float = 0.3, tail_s: float = 0.4) -> Speech:
        """All of the text as one Speech, with silence before and after: exactly the pieces that the
        streaming path (``render_text``) renders, joined."""
        return concat_speech(list(self._pieces(text, {"tts": 0.0}, lead_s, tail_s)), text)

    def motion(self, speech: Speech, settings: RenderSettings) -> MotionTrack:
        """The whole track for ``speech``: the motion model's frames for it pushed in one piece."""
        source = self.motion_model(settings.fps, settings.seed, settings.style)
        values = np.concatenate([source.push(speech), source.finish()]).astype(np.float32)
        return MotionTrack(settings.fps, values)

    def frames(self, avatar: Avatar | VideoAvatar, track: MotionTrack) -> Iterator[Frame]:
        renderer = avatar.frame_renderer(self.renderer)
        for k in range(track.n_frames):
            yield Frame(k, renderer.render(track.values[k]))

    def stream_av(
        self,
        avatar: Avatar | VideoAvatar,
        pieces: Iterable[Speech],
        settings: RenderSettings,
        timings: dict[str, float] | None = None,
        motion: MotionSource | None = None,
    ) -> Iterator[AVFrame]:
        """The streaming path: speech pieces in (as a TTS yields them), frames with their audio out.

        Motion is generated causally (``MotionStream``), so the first frames come out while later
        pieces are still being synthesized. Frame k carries samples [k*sr/fps, (k+1)*sr/fps); the
        audio after the last piece is padded with silence to a whole frame. ``motion``: the motion source
        (default: the pipeline's motion model, e.g. the phonetic ``MotionStream`` on the pieces' phones).
        """
        timings = {} if timings is None else timings
        for key in ("motion", "render"):
            timings.setdefault(key, 0.0)
        fps = settings.fps
        stream = motion if motion is not None else self.motion_model(fps, settings.seed, settings.style)
        renderer = avatar.frame_renderer(self.renderer)
        audio: list[np.ndarray] = []
        buffered = 0  # samples held in ``audio``
        consumed = 0  # absolute index of the first held sample
        sr = 0
        k = 0

        def emit(rows: np.ndarray, final: bool) -> Iterator[AVFrame]:
            nonlocal k, consumed, buffered, audio
            for row in rows:
                a = int(round(k * sr / fps))
                b = int(round((k + 1) * sr / fps))
                flat = np.concatenate(audio) if len(audio) != 1 else audio[0]
                seg = flat[a - consumed : b - consumed]
                if len(seg) < b - a:
                    if not final:
                        raise RuntimeError("motion ran ahead of the audio")  # pragma: no cover
                    seg = np.concatenate([seg, np.zeros(b - a - len(seg), np.float32)])
                audio = [flat[b - consumed :]]
                buffered = len(audio[0])
                consumed = b
                t0 = time.perf_counter()
                image = renderer.render(row)
                timings["render"] += time.perf_counter() - t0
                yield AVFrame(Frame(k, image), seg, sr)
                k += 1

        for piece in pieces:
            if sr and piece.sample_rate != sr:
                raise ValueError(f"speech pieces change sample rate ({sr} -> {piece.sample_rate} Hz)")
            sr = piece.sample_rate
            audio.append(piece.samples.astype(np.float32))
            buffered += len(piece.samples)
            t0 = time.perf_counter()
            rows = stream.push(piece)
            timings["motion"] += time.perf_counter() - t0
            yield from emit(rows, final=False)
        if not sr:
            raise ValueError("no speech to render")
        t0 = time.perf_counter()
        rows = stream.finish()
        timings["motion"] += time.perf_counter() - t0
        yield from emit(rows, final=True)

    def render_mp4(
        self,
        avatar: Avatar | VideoAvatar,
        speech: Speech | Iterable[Speech],
        out: str | Path,
        settings: RenderSettings,
        progress: Callable[[int, int], None] | None = None,
        timings: dict[str, float] | None = None,
        expected_frames: int | None = None,
        motion: MotionSource | None = None,
    ) -> RenderResult:
        """Render speech (one Speech, or pieces as a TTS streams them) on ``avatar`` into an MP4.

        Audio and video have equal length. The file appears at ``out`` only when complete.
        """
        timings = {} if timings is None else timings
        pieces: Iterable[Speech] = [speech] if isinstance(speech, Speech) else speech
        if isinstance(speech, Speech):
            expected_frames = frame_count(len(speech.samples), speech.sample_rate, settings.fps)
        w, h = avatar.size
        frames = iter(self.stream_av(avatar, pieces, settings, timings, motion))
        first = next(frames, None)
        if first is None:
            raise ValueError("no speech to render")
        n = 0
        options = {"crf": settings.crf, "label": settings.label}
        with mp4_output(out, w, h, settings.fps, first.sample_rate, **options) as sink:
            for av_frame in itertools.chain([first], frames):
                sink.put(av_frame.audio, av_frame.frame.image)  # encoded while the next frames render
                n += 1
                if progress is not None:
                    progress(n, max(expected_frames or 0, n))
        # encoding runs beside rendering: its figure is the encoder thread's own time
        timings["encode"] = sink.seconds
        return RenderResult(Path(out), n, settings.fps, n / settings.fps, timings)

    def render_text(
        self,
        text: str,
        out: str | Path,
        image: str | Path | np.ndarray | VideoAvatar | None = None,
        settings: RenderSettings | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RenderResult:
        """Text + portrait (or video avatar) -> MP4, streamed: frames are rendered and encoded while later sentences
        are still being synthesized. Per-stage timings are in the result."""
        settings = settings or RenderSettings()
        timings: dict[str, float] = {"tts": 0.0}
        t0 = time.perf_counter()
        avatar, settings = self._face(image, settings)
        timings["face"] = time.perf_counter() - t0
        clean_text(text)  # fail fast, before any work, on empty or over-long text
        # rough frame estimate for the progress bar: ~14 characters per second of speech
        expected = int((len(text) / 14.0 + 0.7) * settings.fps)
        return self.render_mp4(avatar, self._pieces(text, timings), out, settings, progress, timings, expected)

    def speech_from_audio(self, path: str | Path, transcript: str | None = None) -> Speech:
        """Recorded speech (wav, mp3, flac, ogg, m4a...) with its phone timeline: forced alignment to
        ``transcript`` when given, to the words recognised in it otherwise (``audio.align``)."""
        return align_file(path, transcript).speech

    def render_audio(
        self,
        audio_path: str | Path,
        out: str | Path,
        image: str | Path | np.ndarray | VideoAvatar | None = None,
        transcript: str | None = None,
        settings: RenderSettings | None = None,
        progress: Callable[[int, int], None] | None = None,
        align: bool | None = None,
    ) -> RenderResult:
        """Recorded speech + portrait -> MP4 (the face says the recording).

        ``align``: True puts the lips on phones from pocketsphinx, force-aligned to ``transcript`` or, without
        one, its English recognition; False drives the mouth from the audio with the learned lip-sync model
        (any voice, any language, no transcript); None (default): alignment when a transcript is given,
        else the model.
        """
        if align is None:
            align = bool(transcript)
        settings = settings or RenderSettings()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        avatar, settings = self._face(image, settings)
        timings["face"] = time.perf_counter() - t0
        if not align:
            samples, sr = load_audio(audio_path)
            speech = Speech(samples, sr, ())
            t0 = time.perf_counter()
            motion = AudioMotionStream(self.lipsync, settings.fps, settings.seed, settings.style)
            timings["lipsync_load"] = time.perf_counter() - t0
            result = self.render_mp4(avatar, speech, out, settings, progress, timings, motion=motion)
            result.notes = ("mouth driven by the learned lip-sync model",)
            return result
        t0 = time.perf_counter()
        aligned = align_file(audio_path, transcript)
        timings["align"] = time.perf_counter() - t0
        result = self.render_mp4(avatar, aligned.speech, out, settings, progress, timings)
        result.notes = aligned.notes
        return result

    def _pieces(
        self, text: str, timings: dict[str, float], lead_s: float = 0.3, tail_s: float = 0.4
    ) -> Iterator[Speech]:
        """Silence, then each synthesized sentence as it is ready, then silence."""
        sr = self.tts.sample_rate
        yield silence(lead_s, sr)
        it = iter(self.tts.stream(text))
        while True:
            t0 = time.perf_counter()
            chunk = next(it, None)
            timings["tts"] += time.perf_counter() - t0
            if chunk is None:
                break
            yield chunk.speech
        yield silence(tail_s, sr)
