"""Phones -> mouth channels: coarticulated viseme targets and lip closures.

Every phone becomes one or two viseme targets; channel values are blended with Cohen-Massaro dominance
functions (each target's pull decays exponentially with distance from its core), so lips anticipate the
next sound. Bilabials (p, b, m) get a closure plateau at least one frame wide, so the lips always meet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.types import SILENCE, Phone
from motion.visemes import BILABIALS, visemes_for

LOOKAHEAD_S = 0.2
LONG_PAUSE_S = 0.3  # pauses longer than this close the lips
_TAU_ANTICIPATE_S = 0.035
_TAU_CARRY_S = 0.045
# articulatory inertia: the blended targets are followed through a zero-phase Gaussian of this s.d.,
# spanning +-_INERTIA_SPAN_S; the targets it reads are looked ahead that much less, so frame k still
# depends only on phones that start before t_k + LOOKAHEAD_S
_INERTIA_S = 0.06
_INERTIA_SPAN_S = 0.12
_CLOSE_RAMP_S = 0.15  # lips approach and leave a p/b/m closure over this long
_SPEAK_JAW = 0.42  # the jaw height speech moves about
_JAW_RANGE = 0.45  # how far towards each viseme's own height it moves
_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
_FULL_VOWEL_S = 0.11  # vowels shorter than this undershoot their jaw target (fast speech)


@dataclass(frozen=True)
class _Seg:
    start: float
    end: float
    target: np.ndarray  # (5,) mouth channel targets
    dominance: float
    closure: bool
    jaw_dominance: float
    pause: bool = False  # a silence long enough for the lips to close


def _segments(phones: list[Phone] | tuple[Phone, ...], articulation: float, jaw_range: float) -> list[_Seg]:
    segs: list[_Seg] = []
    for p in phones:
        vis = visemes_for(p.symbol)
        n = len(vis)
        for j, v in enumerate(vis):
            s = p.start_s + (p.end_s - p.start_s) * j / n
            e = p.start_s + (p.end_s - p.start_s) * (j + 1) / n
            jaw = v.jaw
            if p.symbol != SILENCE:
                # filmed speakers hold the jaw near a speaking height and move about it, not between shut
                # and wide open: targets are drawn towards it (the lips still close for p/b/m)
                jaw = _SPEAK_JAW + _JAW_RANGE * jaw_range * (jaw - _SPEAK_JAW)
            jaw *= articulation
            if p.symbol in ("AH", "IH", "UH", "ER") and p.stress == 0:
                jaw *= 0.8  # reduced vowels open less
            if p.symbol in _VOWELS and p.duration_s < _FULL_VOWEL_S:
                jaw *= 0.7 + 0.3 * p.duration_s / _FULL_VOWEL_S  # no time to open fully
            target = np.array([jaw, v.funnel, v.pucker, v.stretch, v.roll_lower])
            jd = v.dominance if v.jaw_dominance is None else v.jaw_dominance
            pause = p.symbol == SILENCE and p.duration_s > LONG_PAUSE_S
            if pause:
                jd = 4.0  # a real pause wins over its neighbours
            segs.append(_Seg(s, e, target, v.dominance, v.closure and p.symbol.rstrip("012") in BILABIALS, jd, pause))
    return segs


def _blend(segs: list[_Seg], times: np.ndarray, lookahead_s: float) -> np.ndarray:
    """Dominance-blended targets (len(times), 5) at ``times``, each reading targets that start at most
    ``lookahead_s`` after it."""
    out = np.zeros((len(times), 5))
    starts = np.array([s.start for s in segs])
    ends = np.array([s.end for s in segs])
    dur = ends - starts
    core_a = starts + 0.25 * dur
    core_b = ends - 0.25 * dur
    pause = np.array([s.pause for s in segs])
    core_a = np.where(pause, starts, core_a)
    core_b = np.where(pause, ends, core_b)
    targets = np.stack([s.target for s in segs])
    t = times[:, None]
    before = np.clip(core_a[None, :] - t, 0, None)
    after = np.clip(t - core_b[None, :], 0, None)
    shape = np.exp(-before / _TAU_ANTICIPATE_S - after / _TAU_CARRY_S)
    # bounded look-ahead: targets that start further in the future have no pull yet
    shape = np.where(starts[None, :] > t + lookahead_s, 0.0, shape)
    shape = np.where(ends[None, :] < t - 1.0, 0.0, shape)
    for cols, alpha in (
        ([0], np.array([s.jaw_dominance for s in segs])),
        ([1, 2, 3, 4], np.array([s.dominance for s in segs])),
    ):
        dom = shape * alpha[None, :]
        wsum = dom.sum(axis=1, keepdims=True)
        out[:, cols] = (dom @ targets[:, cols]) / np.maximum(wsum, 1e-9)
        out[wsum[:, 0] < 1e-9, cols[0] : cols[-1] + 1] = 0.0
    return out


def mouth_curves(
    phones: list[Phone] | tuple[Phone, ...],
    times: np.ndarray,
    fps: float,
    articulation: float = 1.0,
    jaw_range: float = 1.0,
) -> np.ndarray:
    """Mouth channels (len(times), 6): jawOpen, funnel, pucker, stretch, rollLower, mouthClose, at
    evenly spaced ``times`` (closure plateaus are at least one 1 / ``fps`` frame wide). ``articulation``
    scales the opening, ``jaw_range`` the jaw's movement about its speaking height."""
    segs = _segments(phones, articulation, jaw_range)
    out = np.zeros((len(times), 6))
    if not segs:
        return out
    # inertia: the blend on a grid extended by the kernel's span, then smoothed (the grid's step is that
    # of ``times``, which may be finer than the frame rate whose closure plateaus are drawn)
    step = float(times[1] - times[0]) if len(times) > 1 else 1.0 / fps
    h = max(1, int(round(_INERTIA_SPAN_S / step)))
    offs = np.arange(-h, h + 1) * step
    w = np.exp(-0.5 * (offs / _INERTIA_S) ** 2)
    w /= w.sum()
    grid = np.concatenate([times[0] + offs[:h], times, times[-1] + offs[h + 1 :]])
    raw = _blend(segs, grid, LOOKAHEAD_S - h * step)
    for ch in range(5):
        out[:, ch] = np.convolve(raw[:, ch], w[::-1], mode="valid")
    # bilabial closure plateaus, at least one frame wide, with short ramps
    close = np.zeros(len(times))
    half_frame = 0.5 / fps
    ramp = _CLOSE_RAMP_S
    for s in segs:
        if not s.closure:
            continue
        c = 0.5 * (s.start + s.end)
        a = min(s.start + 0.15 * (s.end - s.start), c - half_frame - 1e-3)
        b = max(s.end - 0.15 * (s.end - s.start), c + half_frame + 1e-3)
        d = np.maximum(a - times, 0) + np.maximum(times - b, 0)
        x = np.clip(1 - d / ramp, 0, 1)
        close = np.maximum(close, x * x * (3 - 2 * x))
    # long pauses: the lips are closed through the pause
    for s in segs:
        if not s.pause:
            continue
        # closing over the last 25 ms of speech before it, parting over the first 25 ms after it
        x = np.clip(np.minimum((times - s.start) / 0.025 + 1, (s.end - times) / 0.025 + 1), 0, 1)
        close = np.maximum(close, x * x * (3 - 2 * x))
    out[:, 5] = close
    return out
