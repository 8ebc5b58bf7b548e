"""``Pipeline`` takes its components by Protocol: a tiny voice, detector, motion model and renderer of our
own make a real MP4 whose picture follows the voice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from audio.types import TTS, Phone, Speech, SpeechChunk
from motion.generator import MotionStyle
from motion.types import CHANNEL_INDEX, CHANNELS, MotionModel
from render.frame import Renderer
from render.landmarks import MEDIAPIPE_478, FaceLandmarks, LandmarkDetector
from render.rig import FaceRig
from talker.facegen import template_points
from talker.pipeline import Pipeline, RenderSettings

SR = 16000
FPS = 25.0
WORD_S, GAP_S = 0.4, 0.2
SIZE = 96


class ToneVoice:
    """Each word is a 440 Hz tone of ``WORD_S`` seconds followed by ``GAP_S`` of silence, one chunk a word."""

    sample_rate = SR

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        words = text.split()
        for i, word in enumerate(words):
            t = np.arange(int(WORD_S * SR)) / SR
            samples = np.concatenate([0.5 * np.sin(2 * np.pi * 440 * t), np.zeros(int(GAP_S * SR))])
            phones = (Phone(0.0, WORD_S, "AA"), Phone(WORD_S, WORD_S + GAP_S, "SIL"))
            speech = Speech(samples.astype(np.float32), SR, phones, text=word)
            yield SpeechChunk(speech, i, i == len(words) - 1, word)


class TemplateDetector:
    """One face, the generic template, in every image."""

    scheme = MEDIAPIPE_478

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        h, w = image.shape[:2]
        pts = np.column_stack([template_points(min(w, h)), np.zeros(478)]).astype(np.float32)
        return [FaceLandmarks(pts, MEDIAPIPE_478, (w, h))]


class LoudnessMotion:
    """jawOpen of a frame is 1 when its audio is loud, else 0; frames come out as soon as their audio is in."""

    def __init__(self, fps: float, seed: int, style: MotionStyle) -> None:
        self.fps = fps
        self.audio = np.zeros(0, np.float32)
        self.sample_rate = 0
        self.done = 0

    def _rows(self, n_frames: int) -> np.ndarray:
        rows = np.zeros((n_frames - self.done, len(CHANNELS)), np.float32)
        for i, k in enumerate(range(self.done, n_frames)):
            a, b = int(k * self.sample_rate / self.fps), int((k + 1) * self.sample_rate / self.fps)
            rows[i, CHANNEL_INDEX["jawOpen"]] = float(np.sqrt(np.mean(self.audio[a:b] ** 2)) > 0.1)
        self.done = n_frames
        return rows

    def push(self, speech: Speech) -> np.ndarray:
        self.sample_rate = speech.sample_rate
        self.audio = np.concatenate([self.audio, speech.samples])
        return self._rows(int(len(self.audio) * self.fps / self.sample_rate))

    def finish(self) -> np.ndarray:
        return self._rows(int(np.ceil(len(self.audio) * self.fps / self.sample_rate)))


class BarRenderer:
    """The portrait with a white bar across its lower half while the jaw is open."""

    def __init__(self, rig: FaceRig) -> None:
        self.image = rig.image

    def render(self, values: np.ndarray) -> np.ndarray:
        out = self.image.copy()
        if values[CHANNEL_INDEX["jawOpen"]] > 0.5:
            h = out.shape[0]
            out[h // 2 :] = 255
        return out


def test_pipeline_renders_with_components_of_our_own(tmp_path: Path) -> None:
    import av

    voice: TTS = ToneVoice()
    detector: LandmarkDetector = TemplateDetector()
    motion: MotionModel = LoudnessMotion
    renderer: Renderer = BarRenderer
    pipe = Pipeline(tts=voice, detector=detector, motion_model=motion, renderer=renderer)
    portrait = np.full((SIZE, SIZE, 3), 60, np.uint8)
    out = tmp_path / "bars.mp4"
    result = pipe.render_text("one two three", out, portrait, RenderSettings(fps=FPS, size=(SIZE, SIZE)))

    speech_s = 0.3 + 3 * (WORD_S + GAP_S) + 0.4  # the pipeline's lead-in and tail silences around the words
    assert result.n_frames == int(np.ceil(speech_s * FPS))
    with av.open(str(out)) as f:
        lower = np.array([fr.to_ndarray(format="gray")[SIZE * 3 // 4 :].mean() for fr in f.decode(video=0)])
    assert len(lower) == result.n_frames
    bar = lower > 200
    onsets = [k for k in range(1, len(bar)) if bar[k] and not bar[k - 1]]
    # the bar shows while each word's tone plays: three runs of WORD_S, starting 0.3 s and then every word
    assert [round(k / FPS, 1) for k in onsets] == [0.3, 0.9, 1.5]
    assert abs(int(bar.sum()) - round(3 * WORD_S * FPS)) <= 3

