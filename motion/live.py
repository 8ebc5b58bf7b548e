"""Motion for live sessions that play both their own text-to-speech and audio from outside.

``MixedMotionStream`` is a ``MotionStream`` whose mouth, for speech pushed without phones (a microphone,
another service's TTS), comes from the learned lip-sync model, and for speech with phones (the voice's
exact timings) from the phonetic generator. Blinks, gaze, head motion and expression always come from
the generator, fed everything in order, so switching between the two sources leaves no seam.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from audio.io import resample
from audio.mel import SAMPLE_RATE
from audio.types import Speech
from motion.audio_motion import SilenceGate, add_mouth, articulation_gain, peak_columns, resample_frames, rows_needed
from motion.generator import LOOKAHEAD_S, MotionStream, MotionStyle
from motion.lipsync import LipsyncModel, LipsyncStream
from motion.types import CHANNELS


class MixedMotionStream:
    """Push speech as it arrives, take frames once final (``MotionStream``'s interface).

    The model starts at the first piece pushed without phones, from silence (as it was trained), and is
    then fed everything, so its context never breaks; until then the stream gives exactly
    ``MotionStream``'s frames at no extra cost. A frame of speech without phones is final when both the
    generator's look-ahead and the model's (96 ms) are covered. ``copy.deepcopy`` shares the model.
    """

    def __init__(
        self,
        model: LipsyncModel,
        fps: float = 25.0,
        seed: int = 0,
        style: MotionStyle | None = None,
        lookahead_s: float = LOOKAHEAD_S,
    ) -> None:
        self.model = model
        self.fps = float(fps)
        self._base = MotionStream(fps, seed, style, lookahead_s)
        self._gain = articulation_gain(self._base.style)
        self._lip: LipsyncStream | None = None
        self._lip_start = 0.0  # the model's time zero, in video frames (fractional)
        n_out = len(model.config.outputs)
        self._mouth = np.zeros((0, n_out), np.float32)
        self._mouth_base = 0  # model row of _mouth[0]
        self._rows = np.zeros((0, len(CHANNELS)), np.float32)  # generator rows not yet emitted
        self._next = 0  # video frame of _rows[0]
        self._spans: list[tuple[int, int]] = []  # video frames [a, b) of speech pushed without phones
        self._n_samples = 0
        self._sr = 0
        self._gate = SilenceGate(self.fps)

    def __deepcopy__(self, memo: dict[int, Any]) -> MixedMotionStream:
        memo[id(self.model)] = self.model  # (weights are read-only: a snapshot shares them)
        new = object.__new__(MixedMotionStream)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            setattr(new, k, copy.deepcopy(v, memo))
        return new

    @property
    def lookahead_s(self) -> float:
        return max(self._base.lookahead_s, self.model.config.lookahead_s) if self._lip else self._base.lookahead_s

    @property
    def style(self) -> MotionStyle:
        return self._base.style

    @property
    def model_driven(self) -> bool:
        """Whether any speech without phones has been pushed (the model runs)."""
        return self._lip is not None

    def _frame_of(self, n_samples: int) -> int:
        """Frames that start before sample ``n_samples``."""
        return int(np.ceil(n_samples * self.fps / self._sr - 1e-9))

    def push(self, speech: Speech, joins: bool = False) -> np.ndarray:
        if self._sr and speech.sample_rate != self._sr:
            raise ValueError(f"speech at {speech.sample_rate} Hz pushed into a stream at {self._sr} Hz")
        self._sr = speech.sample_rate
        before = self._n_samples
        self._n_samples += len(speech.samples)
        if not speech.phones and len(speech.samples):
            if self._lip is None:
                self._lip = self.model.stream()
                self._lip_start = before * self.fps / self._sr
            a, b = self._frame_of(before), self._frame_of(self._n_samples)
            if self._spans and self._spans[-1][1] == a:
                self._spans[-1] = (self._spans[-1][0], b)
            elif b > a:
                self._spans.append((a, b))
        if self._lip is not None:
            mouth, _ = self._lip.push(resample(speech.samples, speech.sample_rate, SAMPLE_RATE))
            self._mouth = np.concatenate([self._mouth, mouth])
        self._gate.push(speech.samples, speech.sample_rate)
        self._rows = np.concatenate([self._rows, self._base.push(speech, joins)])
        return self._emit(final=False)

    def finish(self) -> np.ndarray:
        self._rows = np.concatenate([self._rows, self._base.finish()])
        if self._lip is not None:
            self._mouth = np.concatenate([self._mouth, self._lip.finish()[0]])
        return self._emit(final=True)

    def _in_span(self, k: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(k), bool)
        for a, b in self._spans:
            inside |= (k >= a) & (k < b)
        return inside

    def _emit(self, final: bool) -> np.ndarray:
        n = len(self._rows)
        if n == 0:
            return self._rows[:0].copy()
        idx = self._next + np.arange(n)
        modelled = self._in_span(idx)
        rate = self.model.config.frame_rate
        if modelled.any() and not final:
            need = rows_needed(idx - self._lip_start, rate, self.fps)
            have = self._mouth_base + len(self._mouth) - 1
            unheard = idx + 1 >= self._gate.n_frames  # the silence gate reads the next frame's level
            blocked = np.flatnonzero(modelled & ((need > have) | unheard))
            n = int(blocked[0]) if len(blocked) else n
        out = self._rows[:n].copy()
        sel = np.flatnonzero(modelled[:n])
        if len(sel) and len(self._mouth):
            outputs = self.model.config.outputs
            local = idx[sel] - self._lip_start
            mouth = resample_frames(self._mouth, rate, self.fps, local, self._mouth_base, peak_columns(outputs))
            mouth[self._gate.shut(idx[sel], final)] = 0.0  # silence: lips together
            part = out[sel]
            add_mouth(part, mouth, outputs, self._gain)
            out[sel] = part
        self._rows = self._rows[n:]
        self._next += n
        self._gate.forget(self._next)
        self._spans = [(a, b) for a, b in self._spans if b > self._next]
        if self._lip is not None:
            # model rows before the next frame's left neighbour and span are no longer needed
            nxt = self._next - self._lip_start
            first = min(np.floor((nxt + 0.5) / self.fps * rate - 0.5), np.ceil(nxt / self.fps * rate - 0.5))
            drop = int(first) - 1 - self._mouth_base
            if drop > 0:
                self._mouth = self._mouth[drop:]
                self._mouth_base += drop
        return out


__all__ = ["MixedMotionStream"]
