"""Motion from audio alone: the lip-sync model's mouth on the phonetic generator's rows.

``AudioMotionStream`` (streaming, ``MotionStream``'s interface) and ``audio_motion`` (a whole file) put the
model's mouth channels, resampled from its 50 rows a second to the video's frame rate with short closures
kept, over the generator's blinks, gaze, head motion and expression offsets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audio.io import resample
from audio.mel import SAMPLE_RATE
from audio.types import Speech
from motion.generator import MotionStream, MotionStyle, activity_lookahead_s
from motion.lipsync import LipsyncModel
from motion.types import CHANNEL_INDEX, CHANNELS


def rows_needed(video_frames: np.ndarray, frame_rate: float, fps: float) -> np.ndarray:
    """Last model row each video frame reads: the right neighbour of its centre or the last row inside its span."""
    k = np.asarray(video_frames, dtype=np.float64)
    centre = np.ceil((k + 0.5) / fps * frame_rate - 0.5)
    span_end = np.ceil((k + 1) / fps * frame_rate - 0.5) - 1
    return np.maximum(centre, span_end).astype(np.int64)


def resample_frames(
    frames: np.ndarray,
    frame_rate: float,
    fps: float,
    video_frames: np.ndarray,
    first_row: int = 0,
    peak_columns: Sequence[int] = (),
) -> np.ndarray:
    """Rows at ``frame_rate`` (row j centred at (j + 0.5) / frame_rate; ``frames[0]`` is row ``first_row``)
    -> one row per video frame index in ``video_frames`` at ``fps``, by linear interpolation (ends held).

    ``peak_columns`` take the largest of the interpolated value and the rows centred inside the video
    frame's span, so a closure shorter than a video frame is not averaged away.
    """
    vf = np.asarray(video_frames)
    if len(frames) == 0:
        return np.zeros((len(vf), frames.shape[1]), np.float32)
    last = len(frames) - 1
    pos = np.clip((vf + 0.5) / fps * frame_rate - 0.5 - first_row, 0, last)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, last)
    w = (pos - lo)[:, None]
    out = (frames[lo] * (1 - w) + frames[hi] * w).astype(np.float32)
    if len(peak_columns):
        cols = list(peak_columns)
        a = np.clip(np.ceil(vf / fps * frame_rate - 0.5).astype(int) - first_row, 0, last)
        b = np.clip(rows_needed(vf, frame_rate, fps) - first_row, 0, last)
        for i in range(len(vf)):
            if b[i] >= a[i]:
                out[i, cols] = np.maximum(out[i, cols], frames[a[i] : b[i] + 1, cols].max(axis=0))
    return out


def articulation_gain(style: MotionStyle) -> float:
    """How far a style opens the jaw relative to the model's prediction (its articulation and expression)."""
    from motion.generator import EXPRESSIONS

    expr = EXPRESSIONS[style.expression]
    inten = style.intensity if style.expression != "neutral" else 0.0
    return float(style.articulation * (1 + (expr.articulation - 1) * inten))


def peak_columns(outputs: Sequence[str]) -> list[int]:
    """The output columns whose short peaks must survive resampling to the video rate (closures)."""
    return [outputs.index("mouthClose")] if "mouthClose" in outputs else []


def add_mouth(rows: np.ndarray, mouth: np.ndarray, outputs: Sequence[str], jaw_gain: float) -> None:
    """Add the model's mouth (frames, len(outputs)) to motion rows (frames, CHANNELS) in place: the
    generator's rows for speech without phones carry only expression offsets on these channels."""
    for j, name in enumerate(outputs):
        gain = jaw_gain if name == "jawOpen" else 1.0
        c = CHANNEL_INDEX[name]
        rows[:, c] = np.clip(mouth[:, j] * gain + rows[:, c], 0.0, 1.5)


SILENT_BELOW_PEAK_DB = 35.0
"""A video frame is silent when its level is this far below the loudest recent frame (or under -60 dBFS)."""
_FLOOR_DB = -60.0
_PEAK_DECAY_DB = 0.1  # per video frame: the reference level forgets a loud frame over a few seconds


class SilenceGate:
    """Which video frames lie in silence, from the audio's level per frame: a frame whose neighbours on
    both sides are silent too gets its mouth shut (the model lets the lips part for a few frames after
    speech ends). Frame by frame, so a stream cut into any pieces gates the same frames."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self._pending = np.zeros(0, np.float32)
        self._taken = 0  # samples consumed into whole frames
        self._peak = -np.inf
        self._silent: list[bool] = []  # frames self._first ..
        self._first = 0
        self.n_frames = 0  # whole frames heard

    def push(self, samples: np.ndarray, sample_rate: int) -> None:
        self._pending = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        while True:
            end = int(round((self.n_frames + 1) * sample_rate / self.fps))
            n = end - self._taken
            if n <= 0 or len(self._pending) < n:
                break
            frame, self._pending = self._pending[:n], self._pending[n:]
            self._taken = end
            level = 10.0 * np.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1e-12)
            self._peak = max(level, self._peak - _PEAK_DECAY_DB)
            self._silent.append(level < max(_FLOOR_DB, self._peak - SILENT_BELOW_PEAK_DB))
            self.n_frames += 1

    def gated(self, k: int, final: bool) -> bool | None:
        """Whether frame ``k`` and both its neighbours are silent (frames past the end of a finished
        stream count as silent); None while frame ``k + 1`` has not been heard yet."""
        if k + 1 >= self.n_frames and not final:
            return None

        def silent(j: int) -> bool:
            if j >= self.n_frames:
                return True
            return j >= self._first and self._silent[j - self._first]

        return silent(k - 1) and silent(k) and silent(k + 1)

    def shut(self, frames: np.ndarray, final: bool) -> np.ndarray:
        """``gated`` of each of ``frames`` (bool array; frames not yet decidable are False)."""
        return np.array([bool(self.gated(int(k), final)) for k in frames], bool)

    def forget(self, before: int) -> None:
        """Drop frames before ``before - 1`` (frame ``before`` still reads its left neighbour)."""
        drop = min(before - 1 - self._first, len(self._silent))
        if drop > 0:
            del self._silent[:drop]
            self._first += drop


class AudioMotionStream:
    """Motion from audio alone: the mouth from the lip-sync model, the rest (blinks, gaze, head, expression
    offsets) from the phonetic generator fed the same audio with no phones. Same interface as ``MotionStream``.

    Audio at another rate than 16 kHz is resampled piece by piece (whole-file use: one piece).
    """

    def __init__(self, model: LipsyncModel, fps: float = 25.0, seed: int = 0, style: MotionStyle | None = None) -> None:
        self.model = model
        self.fps = float(fps)
        # no phones: the generator only needs the loudness window ahead of each frame
        self._base = MotionStream(fps, seed, style, lookahead_s=activity_lookahead_s(fps))
        self._articulation = articulation_gain(self._base.style)
        self._lip = model.stream()
        self._mouth = np.zeros((0, len(model.config.outputs)), np.float32)
        self._mouth_base = 0  # model frame index of _mouth[0]
        self._rows = np.zeros((0, len(CHANNELS)), np.float32)
        self._next = 0  # next video frame to emit
        self._sr = 0
        self._gate = SilenceGate(self.fps)

    @property
    def lookahead_s(self) -> float:
        """How long after its centre a frame waits for audio: the model's look-ahead or the generator's
        loudness window (head motion), whichever is longer (140 ms at 25 fps)."""
        return max(self.model.config.lookahead_s, self._base.lookahead_s)

    def push(self, speech: Speech, joins: bool = False) -> np.ndarray:
        del joins  # no phones to join
        if self._sr and speech.sample_rate != self._sr:
            raise ValueError(f"speech at {speech.sample_rate} Hz pushed into a stream at {self._sr} Hz")
        self._sr = speech.sample_rate
        rows = self._base.push(Speech(speech.samples, speech.sample_rate, ()))
        self._gate.push(speech.samples, speech.sample_rate)
        mouth, _ = self._lip.push(resample(speech.samples, speech.sample_rate, SAMPLE_RATE))
        return self._emit(rows, mouth, final=False)

    def finish(self) -> np.ndarray:
        rows = self._base.finish()
        mouth, _ = self._lip.finish()
        return self._emit(rows, mouth, final=True)

    def _emit(self, rows: np.ndarray, mouth: np.ndarray, final: bool) -> np.ndarray:
        self._rows = np.concatenate([self._rows, rows])
        self._mouth = np.concatenate([self._mouth, mouth])
        rate = self.model.config.frame_rate
        n_ready = len(self._rows)
        if not final:
            need = rows_needed(self._next + np.arange(n_ready), rate, self.fps)
            n_ready = int(np.sum(need <= self._mouth_base + len(self._mouth) - 1))  # need grows with k
            # and the next frame's level is known (the generator's look-ahead covers it)
            n_ready = min(n_ready, max(0, self._gate.n_frames - 1 - self._next))
        if n_ready <= 0:
            return np.zeros((0, len(CHANNELS)), np.float32)
        out = self._rows[:n_ready].copy()
        idx = self._next + np.arange(n_ready)
        outputs = self.model.config.outputs
        per_video = resample_frames(self._mouth, rate, self.fps, idx, self._mouth_base, peak_columns(outputs))
        # in silence the lips are together: the model's mouth is dropped there (the rows keep the
        # generator's expression offsets)
        per_video[self._gate.shut(idx, final)] = 0.0
        add_mouth(out, per_video, outputs, self._articulation)
        self._rows = self._rows[n_ready:]
        self._next += n_ready
        self._gate.forget(self._next)
        # model frames before the next video frame's left neighbour and span are no longer needed
        first = min(np.floor((self._next + 0.5) / self.fps * rate - 0.5), np.ceil(self._next / self.fps * rate - 0.5))
        keep = int(first) - 1 - self._mouth_base
        if keep > 0:
            self._mouth = self._mouth[keep:]
            self._mouth_base += keep
        return out.astype(np.float32)


def audio_motion(
    model: LipsyncModel,
    samples: np.ndarray,
    sample_rate: int,
    fps: float = 25.0,
    seed: int = 0,
    style: MotionStyle | None = None,
) -> np.ndarray:
    """Whole recording -> MotionTrack values (frames, CHANNELS) with the mouth from ``model``."""
    s = AudioMotionStream(model, fps, seed, style)
    speech = Speech(np.asarray(samples, np.float32), sample_rate, ())
    return np.concatenate([s.push(speech), s.finish()])
