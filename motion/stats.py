"""Statistics of a MotionTrack that say how a face moves, comparable between filmed and rendered clips.

Every figure is read from the channels alone (the same way for a track read from a video by the motion
encoder and for one the generator made), plus an optional phone timeline (which frames are speech, which
phones are p/b/m) or, without one, a speaking mask from the audio's loudness.

* articulation speed: mean |d lip gap / dt| while speaking, in inter-ocular distances (IOD) per second
  (lip gap = jawOpen * (1 - mouthClose); jawOpen 1 is ``LIP_GAP_IOD`` IOD), overall and per phone class;
* lip-gap percentiles while speaking (IOD);
* p/b/m: the smallest lip gap inside each bilabial (depth, IOD), the share reaching a closed mouth, and
  how long the lips stay near-closed around it;
* head yaw/pitch/roll: standard deviation (degrees) while speaking and while listening, and the
  spectral centroid (Hz) of the speaking motion;
* blinks: rate per minute and duration; brows: s.d. of browInnerUp and its rises per minute.

``compare`` checks a set of statistics against a reference range (``motion/assets/reference_stats.json``:
filmed speakers read by the encoder).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from audio.types import SILENCE, Phone
from motion.types import MotionTrack
from motion.visemes import BILABIALS

LIP_GAP_IOD = 0.5  # jawOpen 1 opens the lips this many inter-ocular distances (motion.types)
CLOSED_IOD = 0.02  # a lip gap under this is a closed mouth (under a pixel at 50 px between the eyes)
NEAR_CLOSED_IOD = 0.04  # ... under this, near-closed: how long a p/b/m closure lasts
BLINK_LEVEL = 0.5  # a lid more than half shut is a blink
BROW_RISE = 0.15  # a browInnerUp rise of this much above its running low is one raise
MIN_PAUSE_S = 0.3  # silences shorter than this are inside speech (between words), not listening
PHONE_CLASSES: dict[str, frozenset[str]] = {
    "vowel": frozenset(
        "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split(),
    ),
    "bilabial": frozenset(BILABIALS),
    "labiodental": frozenset({"F", "V"}),
    "other_consonant": frozenset(
        "B CH D DH G HH JH K L N NG P R S SH T TH W Y Z ZH".split(),
    )
    - frozenset(BILABIALS),
}
_SPEC_BAND = (0.1, 5.0)  # head motion frequencies the centroid is taken over (Hz)


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float

    def contains(self, v: float) -> bool:
        return self.lo <= v <= self.hi


def speaking_mask_from_phones(phones: Sequence[Phone], n_frames: int, fps: float) -> np.ndarray:
    """Frames inside speech: every non-silent phone, and silences shorter than ``MIN_PAUSE_S`` between them."""
    t = (np.arange(n_frames) + 0.5) / fps
    mask = np.zeros(n_frames, bool)
    ph = list(phones)
    for i, p in enumerate(ph):
        inner = 0 < i < len(ph) - 1 and p.duration_s <= MIN_PAUSE_S
        if p.symbol != SILENCE or inner:
            mask |= (t >= p.start_s) & (t < p.end_s)
    return mask


def speaking_mask_from_audio(samples: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """Frames inside speech by loudness: within 30 dB of the clip's loud frames, gaps under
    ``MIN_PAUSE_S`` bridged."""
    hop = sample_rate / fps
    lev = np.full(n_frames, -120.0)
    x = samples.astype(np.float64)
    for k in range(n_frames):
        seg = x[int(k * hop) : int((k + 1) * hop)]
        if len(seg):
            lev[k] = 10 * np.log10(float(np.mean(seg * seg)) + 1e-12)
    loud = lev > np.percentile(lev, 95) - 30.0
    return _bridge(loud, int(round(MIN_PAUSE_S * fps)))


def _bridge(mask: np.ndarray, max_gap: int) -> np.ndarray:
    out = mask.copy()
    idx = np.where(mask)[0]
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            out[a:b] = True
    return out


def lip_gap_iod(track: MotionTrack) -> np.ndarray:
    """The lip opening per frame in inter-ocular distances."""
    return LIP_GAP_IOD * track.channel("jawOpen") * (1.0 - np.clip(track.channel("mouthClose"), 0.0, 1.0))


def _frames_of(p: Phone, n: int, fps: float) -> np.ndarray:
    t = (np.arange(n) + 0.5) / fps
    idx = np.where((t >= p.start_s) & (t < p.end_s))[0]
    if len(idx) == 0:  # shorter than a frame: the frame nearest its middle
        idx = np.array([int(np.clip(round(0.5 * (p.start_s + p.end_s) * fps - 0.5), 0, n - 1))])
    return idx


def _centroid_hz(x: np.ndarray, fps: float) -> float:
    if len(x) < 8:
        return float("nan")
    y = (x - x.mean()) * np.hanning(len(x))
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1.0 / fps)
    band = (f >= _SPEC_BAND[0]) & (f <= _SPEC_BAND[1])
    if spec[band].sum() <= 0:
        return float("nan")
    return float((f[band] * spec[band]).sum() / spec[band].sum())


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.where(d == 1)[0].tolist(), np.where(d == -1)[0].tolist()))


def motion_stats(
    track: MotionTrack,
    phones: Sequence[Phone] | None = None,
    speaking: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> dict[str, float]:
    """Named statistics of ``track`` (NaN where a clip has none of what they need, e.g. no listening).

    ``phones``: the clip's phone timeline (enables the per-class speeds and the p/b/m figures, and gives
    the speaking mask); ``speaking``: a per-frame mask used when there are no phones (default: all
    frames); ``valid``: frames with a face (others are left out)."""
    n, fps = track.n_frames, track.fps
    if n < 2:
        raise ValueError(f"a track of {n} frame(s) has no motion to measure")
    ok = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    if phones:
        speak = speaking_mask_from_phones(phones, n, fps)
    elif speaking is not None:
        speak = np.asarray(speaking, bool)
    else:
        speak = np.ones(n, bool)
    speak = speak & ok
    listen = ~speak & ok
    gap = lip_gap_iod(track)
    speed = np.abs(np.gradient(gap)) * fps
    pair_ok = ok & np.roll(ok, 1) & np.roll(ok, -1)
    s: dict[str, float] = {
        "duration_s": n / fps,
        "speaking_share": float(speak.mean()),
    }
    sp = speak & pair_ok
    s["articulation_speed_iod_s"] = float(speed[sp].mean()) if sp.any() else float("nan")
    if speak.any():
        for q in (10, 50, 90):
            s[f"lip_gap_p{q}_iod"] = float(np.percentile(gap[speak], q))
    if phones:
        for cls, members in PHONE_CLASSES.items():
            idx = [_frames_of(p, n, fps) for p in phones if p.symbol in members]
            frames = np.concatenate(idx) if idx else np.zeros(0, int)
            frames = frames[pair_ok[frames]] if len(frames) else frames
            s[f"speed_{cls}_iod_s"] = float(speed[frames].mean()) if len(frames) else float("nan")
        depth, dur = [], []
        near = gap < NEAR_CLOSED_IOD
        for p in phones:
            if p.symbol not in BILABIALS:
                continue
            fr = _frames_of(p, n, fps)
            if not ok[fr].all():
                continue
            k = int(fr[np.argmin(gap[fr])])
            depth.append(float(gap[k]))
            a = b = k
            while near[k] and a > 0 and near[a - 1]:
                a -= 1
            while near[k] and b < n - 1 and near[b + 1]:
                b += 1
            dur.append((b - a + 1) / fps if near[k] else 0.0)
        s["bilabials"] = float(len(depth))
        s["bilabial_closed_share"] = float(np.mean(np.array(depth) < CLOSED_IOD)) if depth else float("nan")
        s["bilabial_depth_iod"] = float(np.median(depth)) if depth else float("nan")
        s["bilabial_closure_s"] = float(np.median(dur)) if dur else float("nan")
    for axis in ("Yaw", "Pitch", "Roll"):
        h = track.channel(f"head{axis}")
        key = axis.lower()
        s[f"head_{key}_sd_speaking_deg"] = float(np.std(h[speak])) if speak.sum() > 2 else float("nan")
        s[f"head_{key}_sd_listening_deg"] = float(np.std(h[listen])) if listen.sum() > fps else float("nan")
        # the centroid over the longest stretch of speech-time frames (a spectrum needs contiguous frames)
        runs = _runs(speak)
        a, b = max(runs, key=lambda r: r[1] - r[0]) if runs else (0, 0)
        s[f"head_{key}_centroid_hz"] = _centroid_hz(h[a:b], fps) if b - a >= fps else float("nan")
    blink = 0.5 * (track.channel("eyeBlinkLeft") + track.channel("eyeBlinkRight"))
    runs = [(a, b) for a, b in _runs((blink > BLINK_LEVEL) & ok)]
    s["blinks_per_min"] = 60.0 * len(runs) / max(float(ok.sum()) / fps, 1e-9)
    s["blink_s"] = float(np.median([(b - a) / fps for a, b in runs])) if runs else float("nan")
    brow = track.channel("browInnerUp")
    s["brow_sd"] = float(np.std(brow[speak])) if speak.sum() > 2 else float("nan")
    s["brow_raises_per_min"] = 60.0 * _rises(brow, BROW_RISE) / max(float(ok.sum()) / fps, 1e-9)
    return s


def _rises(x: np.ndarray, step: float) -> int:
    """How many times ``x`` rises by ``step`` above its lowest value since the last counted rise fell back."""
    count, low, up = 0, float("inf"), False
    for v in x:
        if not up:
            low = min(low, float(v))
            if v - low >= step:
                count, up = count + 1, True
        elif v <= low + 0.5 * step:
            up, low = False, float(v)
    return count


# statistics a render must match the filmed reference on (the others are descriptive)
COMPARED: tuple[str, ...] = (
    "articulation_speed_iod_s",
    "lip_gap_p50_iod",
    "lip_gap_p90_iod",
    "head_yaw_sd_speaking_deg",
    "head_pitch_sd_speaking_deg",
    "head_roll_sd_speaking_deg",
    "head_yaw_centroid_hz",
    "head_pitch_centroid_hz",
    "head_roll_centroid_hz",
    "blinks_per_min",
    "blink_s",
    "brow_sd",
    "brow_raises_per_min",
)


def windows(
    track: MotionTrack,
    phones: Sequence[Phone] | None,
    speaking: np.ndarray | None,
    valid: np.ndarray | None,
    window_s: float = 4.0,
    hop_s: float = 1.0,
) -> list[dict[str, float]]:
    """``motion_stats`` of every ``window_s`` stretch of a clip (a sentence's length), ``hop_s`` apart."""
    n, fps = track.n_frames, track.fps
    w, h = int(round(window_s * fps)), max(1, int(round(hop_s * fps)))
    out = []
    for a in range(0, max(1, n - w + 1), h):
        b = min(n, a + w)
        t0, t1 = a / fps, b / fps
        sub = MotionTrack(fps, track.values[a:b], track.channels)
        ph = None
        if phones:
            ph = [
                Phone(max(p.start_s, t0) - t0, min(p.end_s, t1) - t0, p.symbol, p.stress)
                for p in phones
                if p.end_s > t0 and p.start_s < t1
            ]
        out.append(
            motion_stats(
                sub,
                ph,
                None if speaking is None else speaking[a:b],
                None if valid is None else valid[a:b],
            )
        )
    return out


def load_reference() -> dict[str, Any]:
    """The filmed reference shipped with talker (``motion/assets/reference_stats.json``)."""
    text = resources.files("motion").joinpath("assets/reference_stats.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def reference_ranges(reference: dict[str, Any] | None = None) -> dict[str, Range]:
    """Per statistic, the range the filmed reference's sentence-length windows span."""
    ref = load_reference() if reference is None else reference
    return {k: Range(float(v[0]), float(v[1])) for k, v in ref["window_ranges"].items()}


def compare(stats: dict[str, float], ranges: dict[str, Range]) -> dict[str, bool | None]:
    """Per compared statistic: inside the reference range (True / False), or None where either lacks it."""
    out: dict[str, bool | None] = {}
    for k in COMPARED:
        v, r = stats.get(k, float("nan")), ranges.get(k)
        out[k] = None if r is None or not np.isfinite(v) else r.contains(v)
    return out
