"""Speech ready for a live session's timeline: a TTS piece resampled to 48 kHz and padded to whole frames
(``Segment``), pieces of one sentence joined as they stream in (``SegmentJoiner``), and a sentence's
leading pause trimmed."""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np
from scipy.signal import resample_poly

from server.settings import AUDIO_SAMPLE_RATE
from talker.stages import SILENCE, Phone, Speech, concat_speech


@dataclass(frozen=True)
class Segment:
    """One TTS piece ready to play: its speech (TTS rate) and 48 kHz int16 audio, ``n_frames`` long."""

    speech: Speech
    audio: np.ndarray  # int16, n_frames * spf samples at 48 kHz, zero-padded
    n_frames: int
    utterance: int
    epoch: int
    first: bool  # first piece of its utterance
    said_at: float  # time.monotonic() of the say request
    joins: bool = False  # cut from the same sentence as the segment before it (``SegmentJoiner``)


def make_segment(speech: Speech, fps: float, utterance: int, epoch: int, first: bool, said_at: float) -> Segment:
    """Resample a TTS piece to 48 kHz and pad it to whole frames (CPU work: call from a worker thread)."""
    spf = int(round(AUDIO_SAMPLE_RATE / fps))
    sr = speech.sample_rate
    g = gcd(AUDIO_SAMPLE_RATE, sr)
    x = speech.samples.astype(np.float64)
    y = resample_poly(x, AUDIO_SAMPLE_RATE // g, sr // g) if sr != AUDIO_SAMPLE_RATE else x
    n = max(1, -(-len(y) // spf))
    audio = np.zeros(n * spf, np.int16)
    audio[: len(y)] = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
    return Segment(speech, audio, n, utterance, epoch, first, said_at)


class SegmentJoiner:
    """Consecutive TTS pieces of one sentence (``PiperTTS.synthesize_stream``) -> ``Segment``s that
    end on frame boundaries and join without a seam.

    A piece ends anywhere; its samples past the last whole frame wait for the next piece, and the
    audio is resampled as one signal (the filter sees ``CONTEXT`` samples past every cut), so the
    joined segments are the segment ``make_segment`` would give for the whole sentence.
    """

    CONTEXT = 64  # TTS-rate samples past a cut that the resampling filter needs (it reaches ~10)

    def __init__(self, fps: float, utterance: int, epoch: int, first: bool, said_at: float) -> None:
        self.fps = float(fps)
        self.spf = int(round(AUDIO_SAMPLE_RATE / fps))
        self.utterance = utterance
        self.epoch = epoch
        self.first = first
        self.said_at = said_at
        self._pieces: list[Speech] = []
        self._whole: Speech | None = None
        self._done = 0  # frames handed out

    def add(self, piece: Speech) -> Segment | None:
        """Take the next piece; returns the frames it completes (None while less than one is ready)."""
        self._pieces.append(piece)
        self._whole = _join_slices(self._pieces)
        n = len(self._whole.samples)
        k = self._done
        while self._bound(k + 1) + self.CONTEXT <= n:
            k += 1
        return self._emit(k, n) if k > self._done else None

    def finish(self) -> Segment | None:
        """The rest, padded with silence to a whole frame."""
        if self._whole is None:
            return None
        n = len(self._whole.samples)
        k = self._done
        while self._bound(k) < n:
            k += 1
        return self._emit(k, n) if k > self._done else None

    def _bound(self, k: int) -> int:
        assert self._whole is not None
        return int(round(k * self._whole.sample_rate / self.fps))

    def _emit(self, k: int, available: int) -> Segment:
        whole = self._whole
        assert whole is not None
        a, b = self._bound(self._done), min(self._bound(k), available)
        sr = whole.sample_rate
        end = min(available, self._bound(k) + self.CONTEXT)
        g = gcd(AUDIO_SAMPLE_RATE, sr)
        up, down = AUDIO_SAMPLE_RATE // g, sr // g
        # resample from just before the new frames, starting on an input sample that falls on an output
        # sample (a multiple of ``down``), so these samples are those of resampling everything at once
        start = max(0, (a - self.CONTEXT) // down * down)
        x = whole.samples[start:end].astype(np.float64)
        y = resample_poly(x, up, down) if up != down else x
        skip = self._done * self.spf - start * up // down
        y = y[skip : skip + (k - self._done) * self.spf]
        audio = np.zeros((k - self._done) * self.spf, np.int16)
        audio[: len(y)] = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
        seg = Segment(
            whole.slice(a, b),
            audio,
            k - self._done,
            self.utterance,
            self.epoch,
            self.first and self._done == 0,
            self.said_at,
            joins=self._done > 0,
        )
        self._done = k
        return seg


def _join_slices(pieces: list[Speech]) -> Speech:
    """Pieces cut from one sentence, joined: a phone cut in two at a seam is one phone again."""
    if len(pieces) == 1:
        return pieces[0]
    whole = concat_speech(pieces, pieces[0].text)
    seams = set(np.round(np.cumsum([p.duration_s for p in pieces[:-1]]), 6).tolist())
    phones: list[Phone] = []
    for p in whole.phones:
        last = phones[-1] if phones else None
        if (
            last is not None
            and (last.symbol, last.stress) == (p.symbol, p.stress)
            and round(last.end_s, 6) in seams
            and abs(last.end_s - p.start_s) < 1e-6
        ):
            phones[-1] = Phone(last.start_s, p.end_s, p.symbol, p.stress)
        else:
            phones.append(p)
    return Speech(whole.samples, whole.sample_rate, tuple(phones), whole.words, whole.text)


def trim_leading_silence(speech: Speech, keep_s: float = 0.01) -> Speech:
    """``speech`` without its leading SIL phone beyond ``keep_s`` (Piper starts every sentence with
    ~50 ms of it): the first piece of an utterance then sounds that much sooner."""
    if not speech.phones or speech.phones[0].symbol != SILENCE:
        return speech
    cut_s = speech.phones[0].end_s - keep_s
    n = int(cut_s * speech.sample_rate)
    if n <= 0 or n >= len(speech.samples):
        return speech
    dt = n / speech.sample_rate
    phones, words = speech.shifted(-dt)
    phones = (Phone(0.0, phones[0].end_s, SILENCE), *phones[1:])
    return Speech(speech.samples[n:], speech.sample_rate, phones, words, speech.text)
