"""Speech -> MotionTrack: coarticulated visemes, blinks, gaze, breathing and head motion.

Mouth: ``motion.coarticulation``; blinks, gaze and head noise: ``motion.idle``; the style and
expressions: ``motion.style``.

Causality: the value of frame k depends only on phones that start before t_k + LOOKAHEAD_S and on
audio up to t_k + LOOKAHEAD_S. ``MotionStream`` exploits this for live use: speech is pushed in chunks
and frames come out as soon as their look-ahead is covered; fed the same speech in any chunking it
produces the same track as ``MotionGenerator.generate`` on the whole (every random choice is drawn
from a generator keyed by the seed and by time or phone position, never by arrival order).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from audio.features import pitch_at
from audio.types import SILENCE, Phone, Speech
from motion.coarticulation import LONG_PAUSE_S, LOOKAHEAD_S, mouth_curves
from motion.idle import _gaze, _hash_uniform, _rng, _smooth_noise, blink_curve, blink_onsets, loop_hz
from motion.style import EXPRESSIONS, Expression, MotionStyle
from motion.types import CHANNEL_INDEX, CHANNELS, MotionTrack

__all__ = [
    "EXPRESSIONS",
    "LONG_PAUSE_S",
    "LOOKAHEAD_S",
    "Expression",
    "MotionGenerator",
    "MotionStream",
    "MotionStyle",
    "activity_lookahead_s",
    "blink_curve",
    "blink_onsets",
    "mouth_curves",
]

_HISTORY_S = 1.5  # phones that ended longer ago than this no longer matter
_ACTIVE_BACK_S = 0.6  # the speaking activity that scales the head's talking motion looks this far back
_ACTIVE_AHEAD_S = 0.12  # ... and this far ahead
_MOUTH = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthStretch", "mouthRollLower")
_C = CHANNEL_INDEX
_WIDE_PER_BROW = 0.35  # eyeWide per unit of an emphasis brow raise
_BROW_RAISE = 0.6  # browInnerUp at the top of an emphasis raise (times liveliness)
_BROW_BLINK_DIP = 0.8  # a blink pulls a raised brow down by this share of the raise (the lid's ring muscle)
_GAZE_HOLDS_TURN = 0.6  # the eyes turn back against this share of a head turn, keeping contact with the viewer
_LOOK_DEG = 24.0  # degrees of eye rotation per unit of eyeLookX (the renderer's iris shift of 0.16 eye widths)


@dataclass
class _Input:
    phones: list[Phone] = field(default_factory=list)
    phone_ends: list[float] = field(default_factory=list)
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    base: int = 0  # absolute index of audio[0]
    sample_rate: int = 0
    n_samples: int = 0
    finished: bool = False


def _active_ahead_frames(fps: float) -> int:
    return max(1, int(round(_ACTIVE_AHEAD_S * fps)))


def activity_lookahead_s(fps: float) -> float:
    """The look-ahead of speech without phones: the loudness window that frame k reads ends with frame
    k + ``_active_ahead_frames``, (that many + 0.5) frames after frame k's centre."""
    return (_active_ahead_frames(fps) + 0.5) / fps


class MotionStream:
    """Incremental motion: push speech as it arrives, take frames as soon as they are final.

    Times are absolute from the stream start; each pushed ``Speech`` follows the previous one.
    """

    def __init__(
        self, fps: float = 25.0, seed: int = 0, style: MotionStyle | None = None, lookahead_s: float = LOOKAHEAD_S
    ) -> None:
        """``lookahead_s``: how long after its centre a frame waits for speech. Phones need ``LOOKAHEAD_S``;
        speech pushed without phones needs only ``activity_lookahead_s(fps)`` (loudness for the head)."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if lookahead_s < activity_lookahead_s(fps) - 1e-9:
            raise ValueError(f"lookahead_s must be at least {activity_lookahead_s(fps):.3f} s at {fps:g} fps")
        self.fps = float(fps)
        self.seed = seed
        self.lookahead_s = float(lookahead_s)
        self.style = style or MotionStyle()
        if self.style.expression not in EXPRESSIONS:
            raise ValueError(f"unknown expression {self.style.expression!r}; choose from {', '.join(EXPRESSIONS)}")
        self._in = _Input()
        self._next = 0  # next frame index to emit
        self._f0: dict[float, float] = {}  # pitch of stressed vowels, by start time
        self._f0_order: list[float] = []

    @property
    def duration_s(self) -> float:
        return self._in.n_samples / self._in.sample_rate if self._in.sample_rate else 0.0

    def push(self, speech: Speech, joins: bool = False) -> np.ndarray:
        """Add the next piece of speech; returns the frames (k, channels) that became final.

        ``joins``: the piece was cut from the same utterance as the previous one (``Speech.slice``), so
        a phone cut in two at the seam is one phone again: fed in slices, the stream gives what the
        whole utterance gives.
        """
        inp = self._in
        if inp.finished:
            raise RuntimeError("push() after finish()")
        if inp.sample_rate and speech.sample_rate != inp.sample_rate:
            raise ValueError(f"speech at {speech.sample_rate} Hz pushed into a stream at {inp.sample_rate} Hz")
        inp.sample_rate = speech.sample_rate
        offset = self.duration_s
        phones, _ = speech.shifted(offset)
        if joins and phones and inp.phones:
            last, head = inp.phones[-1], phones[0]
            if (last.symbol, last.stress) == (head.symbol, head.stress) and abs(last.end_s - head.start_s) < 1e-6:
                inp.phones[-1] = Phone(last.start_s, head.end_s, last.symbol, last.stress)
                inp.phone_ends[-1] = head.end_s
                phones = phones[1:]
        inp.phones.extend(phones)
        inp.phone_ends.extend(p.end_s for p in phones)
        inp.audio = np.concatenate([inp.audio, speech.samples.astype(np.float32)])
        inp.n_samples += len(speech.samples)
        return self._emit(final=False)

    def finish(self) -> np.ndarray:
        """No more speech: returns the remaining frames (the last one covers the audio's end)."""
        self._in.finished = True
        return self._emit(final=True)

    def _total_frames(self) -> int:
        inp = self._in
        if not inp.sample_rate:
            return 0
        return int(np.ceil(inp.n_samples * self.fps / inp.sample_rate - 1e-9))

    def _emit(self, final: bool) -> np.ndarray:
        total = self._total_frames()
        if final:
            last = total
        else:
            # frame k is final once audio and phones cover its centre plus the look-ahead
            horizon = self.duration_s - self.lookahead_s
            last = int(np.floor(horizon * self.fps - 0.5)) + 1 if horizon > 0 else 0
            last = min(max(last, 0), total)
        if last <= self._next:
            return np.zeros((0, len(CHANNELS)), np.float32)
        # blocks of ~10 s keep the dominance matrix (frames x phones) small on long inputs
        vals = np.concatenate(
            [self._compute(np.arange(a, min(a + 256, last)), total) for a in range(self._next, last, 256)]
        )
        self._next = last
        self._trim()
        return vals

    def _trim(self) -> None:
        """Drop audio and phones that can no longer influence future frames (bounded memory)."""
        inp = self._in
        t_keep = self._next / self.fps - _HISTORY_S
        if t_keep <= 0:
            return
        i0 = bisect.bisect_left(inp.phone_ends, t_keep)
        inp.phones = inp.phones[i0:]
        inp.phone_ends = inp.phone_ends[i0:]
        cut = int(t_keep * inp.sample_rate) - inp.base
        if cut > 0:
            inp.audio = inp.audio[cut:]
            inp.base += cut

    def _audio_level(self, k: np.ndarray, total: int) -> np.ndarray:
        inp = self._in
        hop = inp.sample_rate / self.fps
        a = np.clip(np.round(k * hop).astype(np.int64) - inp.base, 0, len(inp.audio))
        b = np.clip(np.round((k + 1) * hop).astype(np.int64) - inp.base, 0, len(inp.audio))
        lo = int(a.min())
        audio = inp.audio[lo : int(b.max())].astype(np.float64)
        a -= lo
        b -= lo
        cs = np.concatenate([[0.0], np.cumsum(audio * audio)])
        n = np.maximum(b - a, 1)
        rms = np.sqrt(np.maximum(cs[b] - cs[a], 0.0) / n)
        out = np.where(b > a, np.maximum(-80.0, 20 * np.log10(rms + 1e-12)), -80.0)
        return out

    def _prominence(self, p: Phone) -> float:
        """How much this stressed vowel's pitch stands out (0..1) against earlier stressed vowels.

        Pitch is read 60 ms into the vowel, inside the look-ahead of every frame the vowel moves, and
        cached per vowel, so the value does not depend on how the speech was chunked.
        """
        key = round(p.start_s, 4)
        if key not in self._f0:
            inp = self._in
            t = p.start_s + min(0.06, 0.5 * p.duration_s)
            f0, _ = pitch_at(inp.audio, inp.sample_rate, t - inp.base / inp.sample_rate)
            self._f0[key] = f0
            self._f0_order.append(key)
            if len(self._f0_order) > 64:
                del self._f0[self._f0_order.pop(0)]
        f0 = self._f0[key]
        if f0 <= 0:
            return 0.3
        earlier = [self._f0[k] for k in self._f0_order if k < key and self._f0[k] > 0][-24:]
        if len(earlier) < 2:
            return 0.5
        ref = float(np.median(earlier))
        return float(np.clip((f0 / ref - 1.0) / 0.12, 0.0, 1.0))

    def _compute(self, k: np.ndarray, total: int) -> np.ndarray:
        st = self.style
        expr = EXPRESSIONS[st.expression]
        inten = st.intensity if st.expression != "neutral" else 0.0
        fps = self.fps
        times = (k + 0.5) / fps
        n = len(k)
        vals = np.zeros((n, len(CHANNELS)), np.float32)
        t_lo = float(times[0]) - 1.2
        t_hi = float(times[-1]) + LOOKAHEAD_S
        allp = self._in.phones
        i0 = bisect.bisect_left(self._in.phone_ends, t_lo)
        phones = [p for p in allp[i0:] if p.start_s <= t_hi]
        articulation = st.articulation * (1 + (expr.articulation - 1) * inten)
        mouth = mouth_curves(phones, times, fps, articulation, st.jaw_range)
        for j, name in enumerate(_MOUTH):
            vals[:, _C[name]] = mouth[:, j]
        vals[:, _C["mouthClose"]] = mouth[:, 5]
        vals[:, _C["mouthSmile"]] = st.smile

        pauses = [(p.start_s, p.end_s) for p in phones if p.symbol == SILENCE]
        onsets = blink_onsets(
            float(times[0]),
            float(times[-1]) + 0.01,
            self.seed,
            st.blink_per_min * (1 + (expr.blink_scale - 1) * inten),
            pauses,
        )
        blink = blink_curve(times, onsets)
        vals[:, _C["eyeBlinkLeft"]] = blink
        vals[:, _C["eyeBlinkRight"]] = blink * 0.98

        # speaking activity: loudness averaged from _ACTIVE_BACK_S before to 0.12 s after (inside the
        # look-ahead). The head's talking motion eases in over that span as speech starts and out after
        # it ends: over +-0.12 s it came in at half a degree a frame, a jolt where idle turns to speech
        back = max(1, int(round(_ACTIVE_BACK_S * fps)))
        half = _active_ahead_frames(fps)
        kk = np.arange(max(0, int(k[0]) - back), min(total, int(k[-1]) + half + 1))
        lev = self._audio_level(kk, total)
        act_raw = np.clip((lev + 50.0) / 25.0, 0, 1)
        # a raised-cosine average (a box's edges would pass loudness flutter on to the head as shake)
        span = np.zeros(int(k[-1]) - int(k[0]) + back + half + 1)
        first = int(kk[0]) - (int(k[0]) - back)
        span[first : first + len(act_raw)] = act_raw
        win = np.hanning(back + half + 3)[1:-1]
        active = np.convolve(span, win[::-1] / win.sum(), mode="valid")[: len(k)]

        # nods, head tilts and brow raises on stressed vowels, stronger when the pitch rises above the
        # speaker's recent stressed vowels (pitch prominence): the head marks the accents, as filmed
        # speakers' do; the tilt's direction and the rest decided by the phone's own keyed draw
        live = st.liveliness
        nod = np.zeros(n)
        tilt = np.zeros(n)
        brow = np.zeros(n)
        for p in phones:
            if p.stress != 1 or p.start_s - 0.05 > times[-1]:
                continue
            prom = self._prominence(p)
            x = times - (p.start_s - 0.05)
            bump = np.where((x >= 0) & (x <= 0.7), np.sin(np.clip(x / 0.7, 0, 1) * np.pi) ** 2, 0.0)
            nod = np.maximum(nod, bump * (0.5 + 0.8 * prom))
            side = 1.0 if _hash_uniform(self.seed, "tilt", round(p.start_s, 3)) < 0.5 else -1.0
            wide = np.where((x >= 0) & (x <= 0.9), np.sin(np.clip(x / 0.9, 0, 1) * np.pi) ** 2, 0.0)
            tilt += side * wide * (0.3 + 0.7 * prom)
            if prom > 0.5 or _hash_uniform(self.seed, "brow", round(p.start_s, 3)) < 0.25 * live:
                b = np.where((x >= 0) & (x <= 0.6), np.sin(np.clip(x / 0.6, 0, 1) * np.pi), 0.0)
                brow = np.maximum(brow, b)
        amp = st.head_amplitude_deg * (1 + (expr.head_scale - 1) * inten)
        talk = amp * live * active
        seed = self.seed
        breath = st.breathing_deg * np.sin(2 * np.pi * loop_hz(0.23) * times + _rng(seed, "breath").uniform(0, 6.28))
        # while speaking the head moves more and faster on every axis, as filmed speakers' do (their roll
        # and pitch vary 2-5 degrees, mostly at 0.5-2 Hz; they turn further, 8-11 degrees s.d.: yaw is held
        # to about half that, peaks near 16 degrees, which the renderer eases into the portrait's room)
        vals[:, _C["headYaw"]] = (
            _smooth_noise(times, seed, "yaw", amp * 0.7, 0.05, 0.3) * (1.0 + 2.1 * active)
            + talk * _smooth_noise(times, seed, "yaw-talk", 5.0, 0.4, 0.9, looped=False)
            + 0.6 * st.nod_deg * live * tilt * active
        )
        vals[:, _C["headPitch"]] = (
            _smooth_noise(times, seed, "pitch", amp * 0.6, 0.05, 0.3)
            + talk * _smooth_noise(times, seed, "pitch-talk", 2.2, 0.45, 1.1, looped=False)
            + st.nod_deg * live * nod * active
            + breath * (1 - 0.7 * active)
        )
        vals[:, _C["headRoll"]] = (
            _smooth_noise(times, seed, "roll", amp * 0.4, 0.05, 0.25)
            + talk * _smooth_noise(times, seed, "roll-talk", 3.0, 0.4, 0.9, looped=False)
            + 0.8 * st.nod_deg * live * tilt * active
        )
        vals[:, _C["browInnerUp"]] = _BROW_RAISE * min(live, 1.5) * brow * (1.0 - _BROW_BLINK_DIP * blink)
        # the eyes open a little wider as the brows rise for emphasis
        vals[:, _C["eyeWideLeft"]] = vals[:, _C["eyeWideRight"]] = _WIDE_PER_BROW * vals[:, _C["browInnerUp"]]
        gaze = _gaze(times, seed, st.gaze_amplitude)
        # speaking, the eyes stay on the viewer as the head turns; listening, they drift with its sway
        vals[:, _C["eyeLookX"]] = gaze[:, 0] - _GAZE_HOLDS_TURN * active * vals[:, _C["headYaw"]] / _LOOK_DEG
        vals[:, _C["eyeLookY"]] = gaze[:, 1]
        # expression offsets on top; lip closure is multiplicative in the renderer, so p/b/m still close
        for name, off in expr.offsets.items():
            vals[:, _C[name]] += off * inten
        return vals


class MotionGenerator:
    """Turns a whole Speech into a MotionTrack at ``fps``; deterministic for a given seed."""

    def __init__(self, fps: float = 25.0, seed: int = 0, style: MotionStyle | None = None) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.seed = seed
        self.style = style or MotionStyle()

    def stream(self) -> MotionStream:
        return MotionStream(self.fps, self.seed, self.style)

    def generate(self, speech: Speech, n_frames: int | None = None) -> MotionTrack:
        s = self.stream()
        parts = [s.push(speech), s.finish()]
        vals = np.concatenate(parts).astype(np.float32)
        if n_frames is not None:
            if n_frames <= len(vals):
                vals = vals[:n_frames]
            else:
                vals = np.concatenate([vals, np.repeat(vals[-1:], n_frames - len(vals), axis=0)])
        return MotionTrack(self.fps, vals)
