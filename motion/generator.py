"""Speech -> MotionTrack: coarticulated visemes, blinks, gaze and head motion.

Mouth: every phone becomes one or two viseme targets; channel values are blended with Cohen-Massaro
dominance functions (each target's pull decays exponentially with distance from its core), so lips
anticipate the next sound. Bilabials (p, b, m) get a closure plateau at least one frame wide, so the
lips always meet. Look-ahead is bounded (``LOOKAHEAD_S``): the value at time t uses only phones that
start before t + LOOKAHEAD_S, so the same code can run on a live stream.

Idle life (blinks, gaze shifts, head drift) is deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.features import frame_count, loudness_db
from audio.types import SILENCE, Phone, Speech
from motion.types import CHANNEL_INDEX, CHANNELS, MotionTrack
from motion.visemes import BILABIALS, visemes_for

LOOKAHEAD_S = 0.2
_TAU_ANTICIPATE_S = 0.035
_TAU_CARRY_S = 0.045
_MOUTH = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthStretch", "mouthRollLower")
_C = CHANNEL_INDEX


@dataclass(frozen=True)
class MotionStyle:
    """How lively the face is. Amplitudes in degrees; rates per minute."""

    head_amplitude_deg: float = 1.6
    nod_deg: float = 1.4
    blink_per_min: float = 17.0
    gaze_amplitude: float = 0.25
    smile: float = 0.0
    articulation: float = 1.0  # scales mouth opening


@dataclass(frozen=True)
class _Seg:
    start: float
    end: float
    target: np.ndarray  # (5,) mouth channel targets
    dominance: float
    closure: bool


def _segments(phones: tuple[Phone, ...], articulation: float) -> list[_Seg]:
    segs: list[_Seg] = []
    for p in phones:
        vis = visemes_for(p.symbol)
        n = len(vis)
        for j, v in enumerate(vis):
            s = p.start_s + (p.end_s - p.start_s) * j / n
            e = p.start_s + (p.end_s - p.start_s) * (j + 1) / n
            jaw = v.jaw * articulation
            if p.symbol in ("AH", "IH", "UH", "ER") and p.stress == 0:
                jaw *= 0.8  # reduced vowels open less
            target = np.array([jaw, v.funnel, v.pucker, v.stretch, v.roll_lower])
            segs.append(_Seg(s, e, target, v.dominance, v.closure and p.symbol.rstrip("012") in BILABIALS))
    return segs


def mouth_curves(phones: tuple[Phone, ...], times: np.ndarray, fps: float, articulation: float = 1.0) -> np.ndarray:
    """Mouth channels (len(times), 6): jawOpen, funnel, pucker, stretch, rollLower, mouthClose."""
    segs = _segments(phones, articulation)
    out = np.zeros((len(times), 6))
    if not segs:
        return out
    starts = np.array([s.start for s in segs])
    ends = np.array([s.end for s in segs])
    dur = ends - starts
    core_a = starts + 0.25 * dur
    core_b = ends - 0.25 * dur
    alpha = np.array([s.dominance for s in segs])
    targets = np.stack([s.target for s in segs])
    t = times[:, None]
    before = np.clip(core_a[None, :] - t, 0, None)
    after = np.clip(t - core_b[None, :], 0, None)
    dom = alpha[None, :] * np.exp(-before / _TAU_ANTICIPATE_S - after / _TAU_CARRY_S)
    # bounded look-ahead: targets that start more than LOOKAHEAD_S in the future have no pull yet
    dom = np.where(starts[None, :] > t + LOOKAHEAD_S, 0.0, dom)
    dom = np.where(ends[None, :] < t - 1.0, 0.0, dom)
    wsum = dom.sum(axis=1, keepdims=True)
    out[:, :5] = (dom @ targets) / np.maximum(wsum, 1e-9)
    out[wsum[:, 0] < 1e-9, :5] = 0.0
    # bilabial closure plateaus, at least one frame wide, with short ramps
    close = np.zeros(len(times))
    half_frame = 0.5 / fps
    ramp = 0.05
    for s in segs:
        if not s.closure:
            continue
        c = 0.5 * (s.start + s.end)
        a = min(s.start + 0.15 * (s.end - s.start), c - half_frame - 1e-3)
        b = max(s.end - 0.15 * (s.end - s.start), c + half_frame + 1e-3)
        d = np.maximum(a - times, 0) + np.maximum(times - b, 0)
        close = np.maximum(close, np.clip(1 - d / ramp, 0, 1) ** 2 * (3 - 2 * np.clip(1 - d / ramp, 0, 1)))
    out[:, 5] = close
    return out


def blink_events(
    duration_s: float, rng: np.random.Generator, per_min: float, pauses: list[tuple[float, float]]
) -> list[float]:
    """Blink onset times: gamma-distributed intervals, pulled to nearby pauses, some double blinks."""
    mean = 60.0 / max(per_min, 1e-3)
    t = float(rng.uniform(0.3, 0.9) * mean)
    out: list[float] = []
    while t < duration_s:
        snap = [ps for ps, pe in pauses if abs(ps - t) < 0.6 and pe - ps > 0.15]
        bt = snap[0] + 0.05 if snap else t
        out.append(bt)
        if rng.random() < 0.12:
            out.append(bt + float(rng.uniform(0.28, 0.4)))
        t = bt + max(1.0, float(rng.gamma(3.0, mean / 3.0)))
    return out


def blink_curve(times: np.ndarray, onsets: list[float]) -> np.ndarray:
    """Lid closure 0..1: fast close (~75 ms), brief hold, slower open (~150 ms)."""
    v = np.zeros(len(times))
    for o in onsets:
        x = times - o
        close = np.clip(x / 0.075, 0, 1)
        opening = np.clip(1 - (x - 0.105) / 0.15, 0, 1)
        shape = np.where(x < 0.105, close, opening)
        shape = np.where((x < 0) | (x > 0.255), 0, shape)
        v = np.maximum(v, np.sin(shape * np.pi / 2) ** 1.5)
    return v


def _smooth_noise(times: np.ndarray, rng: np.random.Generator, amp: float, f_lo: float, f_hi: float) -> np.ndarray:
    out = np.zeros(len(times))
    for _ in range(3):
        f = rng.uniform(f_lo, f_hi)
        ph = rng.uniform(0, 2 * np.pi)
        out += np.sin(2 * np.pi * f * times + ph) * rng.uniform(0.5, 1.0)
    return amp * out / 2.0


class MotionGenerator:
    """Turns a Speech into a MotionTrack at ``fps``; deterministic for a given seed."""

    def __init__(self, fps: float = 25.0, seed: int = 0, style: MotionStyle | None = None) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.seed = seed
        self.style = style or MotionStyle()

    def generate(self, speech: Speech, n_frames: int | None = None) -> MotionTrack:
        n = frame_count(len(speech.samples), speech.sample_rate, self.fps) if n_frames is None else n_frames
        times = (np.arange(n) + 0.5) / self.fps
        st = self.style
        rng = np.random.default_rng(self.seed)
        vals = np.zeros((n, len(CHANNELS)), np.float32)
        mouth = mouth_curves(speech.phones, times, self.fps, st.articulation)
        for j, name in enumerate(_MOUTH):
            vals[:, _C[name]] = mouth[:, j]
        vals[:, _C["mouthClose"]] = mouth[:, 5]
        vals[:, _C["mouthSmile"]] = st.smile

        pauses = [(p.start_s, p.end_s) for p in speech.phones if p.symbol == SILENCE]
        onsets = blink_events(n / self.fps, rng, st.blink_per_min, pauses)
        blink = blink_curve(times, onsets)
        vals[:, _C["eyeBlinkLeft"]] = blink
        vals[:, _C["eyeBlinkRight"]] = blink * 0.98

        # speaking activity (smoothed): scales speech-driven head motion
        level = loudness_db(speech.samples, speech.sample_rate, self.fps, n)
        active = np.clip((level + 50.0) / 25.0, 0, 1)
        k = max(1, int(round(0.25 * self.fps)))
        active = np.convolve(active, np.ones(k) / k, mode="same")

        # nods and brow raises on stressed vowels
        nod = np.zeros(n)
        brow = np.zeros(n)
        for p in speech.phones:
            if p.stress == 1:
                x = times - (p.start_s - 0.05)
                bump = np.where((x >= 0) & (x <= 0.4), np.sin(np.clip(x / 0.4, 0, 1) * np.pi) ** 2, 0.0)
                nod = np.maximum(nod, bump)
                if rng.random() < 0.25:
                    brow = np.maximum(
                        brow, np.where((x >= 0) & (x <= 0.6), np.sin(np.clip(x / 0.6, 0, 1) * np.pi), 0.0)
                    )
        amp = st.head_amplitude_deg
        vals[:, _C["headYaw"]] = _smooth_noise(times, rng, amp * 1.2, 0.05, 0.3) + active * _smooth_noise(
            times, rng, amp * 0.8, 0.3, 0.8
        )
        vals[:, _C["headPitch"]] = _smooth_noise(times, rng, amp * 0.7, 0.05, 0.3) + st.nod_deg * nod * active
        vals[:, _C["headRoll"]] = _smooth_noise(times, rng, amp * 0.5, 0.05, 0.25)
        vals[:, _C["browInnerUp"]] = 0.35 * brow

        # gaze: small saccades held for 0.8-2.5 s
        gx = np.zeros(n)
        gy = np.zeros(n)
        t = 0.0
        cur = np.zeros(2)
        while t < n / self.fps:
            nxt = rng.normal(0, st.gaze_amplitude, 2) * np.array([1.0, 0.5])
            idx = times >= t
            gx[idx] = nxt[0]
            gy[idx] = nxt[1]
            cur = nxt
            t += float(rng.uniform(0.8, 2.5))
        del cur
        k2 = max(1, int(round(0.06 * self.fps)))
        vals[:, _C["eyeLookX"]] = np.convolve(gx, np.ones(k2) / k2, mode="same")
        vals[:, _C["eyeLookY"]] = np.convolve(gy, np.ones(k2) / k2, mode="same")
        return MotionTrack(self.fps, vals)
