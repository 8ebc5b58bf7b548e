"""Idle life: keyed random draws, blinks, smooth noise for the head, and saccadic gaze.

Every random choice is keyed by the seed and by time (a block number, a label), never by call order, so
a stream cut anywhere gives the same motion. Idle life repeats every ``IDLE_LOOP_S``: blocks are keyed by
their place in the loop and the head's slow noise runs at whole cycles per loop, so a listening avatar shows
the same frames again one loop later (live sessions reuse them instead of drawing them anew).
"""

from __future__ import annotations

import zlib

import numpy as np

from motion.coarticulation import LOOKAHEAD_S

IDLE_LOOP_S = 40.0
"""Idle motion (blinks, gaze, the head's slow drift, breathing) repeats after this many seconds."""
_BLINK_BLOCK_S = 8.0  # blinks are planned in independent blocks of this length (a loop holds whole blocks)
_BLINK_BLOCKS = round(IDLE_LOOP_S / _BLINK_BLOCK_S)  # blocks per idle loop


def _rng(seed: int, *key: object) -> np.random.Generator:
    """A random generator keyed by the seed and a label, independent of call order."""
    h = zlib.crc32(repr((seed,) + key).encode())
    return np.random.default_rng([seed & 0xFFFFFFFF, h])


def _hash_uniform(seed: int, *key: object) -> float:
    """A uniform number in [0, 1) determined by the seed and a key (cheap, order-independent)."""
    return zlib.crc32(repr((seed,) + key).encode()) / 2**32


def blink_onsets(t0: float, t1: float, seed: int, per_min: float, pauses: list[tuple[float, float]]) -> list[float]:
    """Blink onset times in [t0, t1): gamma-distributed intervals planned per fixed time block,
    moved to a pause that starts at most 0.6 s before or 0.2 s after, 12% double blinks.

    The plan depends on the seed and the block alone (each blink moved to a pause on its own), and
    pauses that follow one another are one (idle silence comes in pieces): a stream computed a few frames
    at a time, each piece seeing different pauses, places every blink where any other piece does."""
    mean = 60.0 / max(per_min, 1e-3)
    merged: list[tuple[float, float]] = []
    for ps, pe in sorted(pauses):
        if merged and ps <= merged[-1][1] + 1e-6:
            merged[-1] = (merged[-1][0], max(merged[-1][1], pe))
        else:
            merged.append((ps, pe))
    out: list[float] = []
    b0 = int(np.floor(t0 / _BLINK_BLOCK_S))
    b1 = int(np.floor(t1 / _BLINK_BLOCK_S))
    for b in range(b0 - 1, b1 + 1):
        if b < 0:
            continue
        rng = _rng(seed, "blink", b % _BLINK_BLOCKS)
        t = b * _BLINK_BLOCK_S + float(rng.uniform(0.2, 0.8)) * min(mean, _BLINK_BLOCK_S)
        while t < (b + 1) * _BLINK_BLOCK_S:
            snap = [ps for ps, pe in merged if -0.6 < ps - t < LOOKAHEAD_S and pe - ps > 0.15]
            bt = snap[0] + 0.05 if snap else t
            if t0 - 0.5 <= bt < t1:
                out.append(bt)
            double, second = rng.random() < 0.12, float(rng.uniform(0.28, 0.4))
            if double and t0 - 0.5 <= bt + second < t1:
                out.append(bt + second)
            t += max(1.2, float(rng.gamma(3.0, mean / 3.0)))
    return sorted(out)


def blink_curve(times: np.ndarray, onsets: list[float]) -> np.ndarray:
    """Lid closure 0..1: fast close (~65 ms), brief hold, slower open (~120 ms); more than half shut for
    ~110 ms, as filmed blinks read by the encoder."""
    v = np.zeros(len(times))
    for o in onsets:
        x = times - o
        close = np.clip(x / 0.065, 0, 1)
        opening = np.clip(1 - (x - 0.09) / 0.12, 0, 1)
        shape = np.where(x < 0.09, close, opening)
        shape = np.where((x < 0) | (x > 0.21), 0, shape)
        v = np.maximum(v, np.sin(shape * np.pi / 2) ** 1.5)
    return v


def loop_hz(f: float) -> float:
    """The frequency nearest ``f`` with a whole number of cycles (at least one) per idle loop."""
    return max(1.0, round(f * IDLE_LOOP_S)) / IDLE_LOOP_S


def _smooth_noise(
    times: np.ndarray, seed: int, label: str, amp: float, f_lo: float, f_hi: float, looped: bool = True
) -> np.ndarray:
    """Three sines of keyed frequencies in [f_lo, f_hi] and phases; ``looped``: whole cycles per idle loop
    (idle motion; speech's own motion need not repeat)."""
    rng = _rng(seed, "noise", label)
    out = np.zeros(len(times))
    for _ in range(3):
        f = rng.uniform(f_lo, f_hi)
        f = loop_hz(f) if looped else f
        ph = rng.uniform(0, 2 * np.pi)
        out += np.sin(2 * np.pi * f * times + ph) * rng.uniform(0.5, 1.0)
    return amp * out / 2.0


_GAZE_BLOCK_S = 10.0
_GAZE_BLOCKS = round(IDLE_LOOP_S / _GAZE_BLOCK_S)


def _gaze_targets(seed: int, block: int, amp: float) -> list[tuple[float, np.ndarray]]:
    """(start time, target) of the gaze fixations planned in one 10 s block (held 0.8-2.5 s each)."""
    rng = _rng(seed, "gaze", block % _GAZE_BLOCKS)
    t = block * _GAZE_BLOCK_S
    out = []
    while t < (block + 1) * _GAZE_BLOCK_S:
        out.append((t, rng.normal(0, amp, 2) * np.array([1.0, 0.5])))
        t += float(rng.uniform(0.8, 2.5))
    return out


def _gaze(times: np.ndarray, seed: int, amp: float) -> np.ndarray:
    """Gaze (x, y) at ``times``: fixations with 60 ms saccades between them."""
    out = np.zeros((len(times), 2))
    if len(times) == 0:
        return out
    b0 = max(0, int(np.floor(times[0] / _GAZE_BLOCK_S)) - 1)
    b1 = int(np.floor(times[-1] / _GAZE_BLOCK_S))
    fix: list[tuple[float, np.ndarray]] = [(-1e9, np.zeros(2))]
    for b in range(b0, b1 + 1):
        fix.extend(_gaze_targets(seed, b, amp))
    starts = np.array([f[0] for f in fix])
    targets = np.stack([f[1] for f in fix])
    idx = np.searchsorted(starts, times, side="right") - 1
    prev = targets[np.maximum(idx - 1, 0)]
    ramp = np.clip((times - starts[idx]) / 0.06, 0, 1)[:, None]
    return prev + (targets[idx] - prev) * ramp
