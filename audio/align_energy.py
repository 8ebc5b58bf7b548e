"""Phone segments and loudness, for the aligner: segments made into a contiguous phone timeline, 10 ms
frame levels, quiet points to cut long audio at, and phones from loudness alone (the fallback when
pocketsphinx is unusable)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.types import SILENCE, Phone

FRAME_S = 0.01
"""pocketsphinx frame step, and the step of the frame levels here (seconds)."""


@dataclass
class Seg:
    """A phone being assembled: times in seconds, an ARPAbet symbol or SIL, lexical stress."""

    start: float  # seconds
    end: float
    sym: str
    stress: int = 0


def clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def contiguous_phones(segs: list[Seg], dur: float, offset: float) -> tuple[Phone, ...]:
    """Sort, shift, clip to [0, dur], fill gaps with SIL, merge neighbouring SILs."""
    out: list[Seg] = []
    t = 0.0
    for s in sorted(segs, key=lambda s: s.start):
        a = clamp(s.start + offset if s.start > 0 else 0.0, 0.0, dur)
        b = clamp(s.end + offset, 0.0, dur)
        a = max(a, t)
        if b - a < 1e-6:
            continue
        if a > t + 1e-6:
            out.append(Seg(t, a, SILENCE))
        out.append(Seg(a, b, s.sym, s.stress))
        t = b
    if dur - t > 1e-6:
        if out and dur - t < 0.0125:
            out[-1].end = dur  # the last partial frame
        else:
            out.append(Seg(t, dur, SILENCE))
    if not out:
        out.append(Seg(0.0, dur, SILENCE))
    merged: list[Seg] = []
    for s in out:
        if merged and s.sym == SILENCE and merged[-1].sym == SILENCE:
            merged[-1].end = s.end
        else:
            merged.append(s)
    merged[-1].end = dur
    return tuple(Phone(s.start, s.end, s.sym, s.stress) for s in merged)


def frame_rms(x: np.ndarray, sr: int, hop_s: float = 0.01, span: int = 3) -> np.ndarray:
    """RMS over ``span`` x ``hop_s`` windows every ``hop_s`` seconds, shape (max(1, len(x) // hop),).

    Computed block-wise so a long recording needs only a few MB beyond its samples.
    """
    hop = max(1, int(sr * hop_s))
    nb = len(x) // hop
    if nb == 0:
        return np.array([float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))]) if len(x) else np.zeros(1)
    energy = np.empty(nb)
    step = 8192
    for i in range(0, nb, step):
        j = min(nb, i + step)
        blk = x[i * hop : j * hop].reshape(j - i, hop).astype(np.float64)
        energy[i:j] = np.einsum("ij,ij->i", blk, blk)
    energy = np.convolve(energy, np.ones(span), mode="same") / (span * hop)
    return np.sqrt(np.maximum(energy, 0.0))


def loud_in_silence(x: np.ndarray, sr: int, segs: list[Seg]) -> float:
    """Fraction of loud 10 ms frames (upper half of the level range) that lie inside SIL segments."""
    db = 20 * np.log10(frame_rms(x, sr) + 1e-9)
    lo, hi = float(np.percentile(db, 10)), float(np.percentile(db, 98))
    loud = db > max(lo + 0.5 * (hi - lo), hi - 30.0)
    sil = np.zeros(len(db), bool)
    for sg in segs:
        if sg.sym == SILENCE:
            sil[int(sg.start / FRAME_S) : int(sg.end / FRAME_S)] = True
    return float((loud & sil).sum()) / max(1, int(loud.sum()))


def max_frame_rms(x: np.ndarray, sr: int) -> float:
    return float(frame_rms(x, sr).max())


def for_decoder(x: np.ndarray) -> np.ndarray:
    """Lift very quiet recordings so 16-bit quantisation does not eat them (CMN removes the gain anyway)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if 0.0 < peak < 0.25:
        return (x * (0.5 / peak)).astype(np.float32)
    return x.astype(np.float32, copy=False)


def quiet_cuts(x: np.ndarray, sr: int, window_s: float) -> list[tuple[int, int]]:
    """Split ``x`` into pieces of at most ``window_s``, cutting at the quietest 10 ms in each piece's last third."""
    n = len(x)
    win = int(window_s * sr)
    if n <= win:
        return [(0, n)]
    rms = frame_rms(x, sr)
    hop = int(sr * 0.01)
    cuts = [(0, 0)]
    a = 0
    while n - a > win:
        lo = (a + 2 * win // 3) // hop
        hi = min((a + win) // hop, len(rms))
        k = lo + int(np.argmin(rms[lo:hi])) if hi > lo else (a + win) // hop
        b = max(a + hop, k * hop)
        cuts.append((a, b))
        a = b
    cuts.append((a, n))
    return cuts[1:]


def energy_phones(x: np.ndarray, sr: int) -> list[Seg]:
    """Syllable-like phones from loudness alone (no recogniser): SIL in pauses, a vowel (AA loud, AH
    softer) around each loudness peak, S where the sound is noisy (high zero-crossing rate), N in dips."""
    hop_s = 0.01
    rms = frame_rms(x, sr, hop_s)
    db = 20 * np.log10(rms + 1e-9)
    floor = float(np.percentile(db, 10))
    peak = float(np.percentile(db, 98))
    thr = max(floor + 0.35 * (peak - floor), peak - 35.0)
    hop = int(sr * hop_s)
    win = max(hop, int(sr * 0.025))
    n = len(db)
    zcr = np.zeros(n)
    for k in range(n):
        seg = x[k * hop : k * hop + win]
        if len(seg) > 1:
            zcr[k] = float(np.mean(np.abs(np.diff(np.signbit(seg).astype(np.int8)))))
    # smooth the level over ~50 ms so syllables, not pitch periods, make the peaks
    kern = np.hanning(7)
    sm = np.convolve(db, kern / kern.sum(), mode="same")
    labels: list[str] = []
    for k in range(n):
        if sm[k] < thr:
            labels.append(SILENCE)
        elif zcr[k] > 0.25 and sm[k] < peak - 6:
            labels.append("S")
        else:
            left = sm[max(0, k - 8) : k + 1].min()
            right = sm[k : k + 9].min()
            prominence = sm[k] - max(left, right)
            if prominence < 2.0 and sm[k] < peak - 12:
                labels.append("N")
            else:
                labels.append("AA" if sm[k] > peak - 6 else "AH")
    segs: list[Seg] = []
    for k, lab in enumerate(labels):
        t = k * hop_s
        if segs and segs[-1].sym == lab:
            segs[-1].end = t + hop_s
        else:
            segs.append(Seg(t, t + hop_s, lab, 1 if lab == "AA" else 0))
    # phones shorter than 30 ms join a neighbour (energy does not resolve them), then equal neighbours merge
    out: list[Seg] = []
    for sg in segs:
        if out and (sg.end - sg.start < 0.03 or out[-1].end - out[-1].start < 0.03 and len(out) == 1):
            if out[-1].end - out[-1].start < 0.03 and len(out) == 1:
                out[-1] = Seg(out[-1].start, sg.end, sg.sym, sg.stress)
            else:
                out[-1].end = sg.end
        elif out and out[-1].sym == sg.sym:
            out[-1].end = sg.end
        else:
            out.append(sg)
    return out
