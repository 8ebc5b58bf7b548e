"""Objective checks of a MotionTrack against its phone timeline.

* bilabial closure: every p/b/m reaches a closed mouth in at least one frame;
* pause closure: frames inside pauses longer than 300 ms have the mouth closed;
* open vowels (AA AE AH AO AW AY) open the jaw clearly;
* jitter: flicker of the jaw above 8 Hz and frame-to-frame acceleration of the head.

"Closed" means the commanded lip gap jawOpen * (1 - mouthClose) is below ``CLOSED_GAP`` (0.04 of the
full opening, i.e. 0.02 inter-ocular distances: under a pixel for a face 50 px between the eyes).

Ground-truth timings are read with ``tools.eval_align``'s readers and turned into Phones here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio.types import SILENCE, Phone
from motion.types import MotionTrack
from motion.visemes import BILABIALS, OPEN_VOWELS

CLOSED_GAP = 0.04
OPEN_JAW = 0.3  # "clearly open": at least 30% of a wide-open mouth (lip gap ~0.15 IOD, ~1 cm)
MIN_PAUSE_S = 0.3
# Articulation moves the jaw at syllable rate (3-7 Hz); energy above 8 Hz is flicker, not speech.
FLICKER_HZ = 8.0
# Bounds used by the tests: flicker under 2% of the full opening (0.01 IOD: half a pixel at 50 px
# between the eyes); head motion as smooth as a filmed speaker's.
MAX_JAW_FLICKER = 0.02
# Filmed speakers nod and tilt by 2-6 degrees (s.d.) and turn by 8-11 at 0.5-2 Hz (motion/assets/
# reference_stats.json); the two clips' encoded head rotation, low-passed at 2 Hz, accelerates by 0.24 and
# 0.30 deg per frame^2 (RMS at 25 fps): a generated head must be smoother than either.
MAX_HEAD_JITTER_DEG = 0.22


@dataclass(frozen=True)
class MotionReport:
    bilabials: int
    bilabial_closed: float  # fraction of bilabial phones reaching a closed mouth
    pause_frames: int
    pause_closed: float  # fraction of frames inside long pauses with the mouth closed
    open_vowels: int
    open_vowel_open: float  # fraction of open vowels whose jaw opens clearly
    jaw_jitter: float  # RMS second difference of jawOpen (per frame^2)
    jaw_flicker: float  # RMS of the jaw curve above 8 Hz (faster than any articulation), 0..1 units
    head_jitter_deg: float  # RMS second difference of head rotation (deg per frame^2)

    def row(self) -> str:
        return (
            f"bilabials closed {100 * self.bilabial_closed:5.1f}% of {self.bilabials:3d} | "
            f"pause frames closed {100 * self.pause_closed:5.1f}% of {self.pause_frames:4d} | "
            f"open vowels open {100 * self.open_vowel_open:5.1f}% of {self.open_vowels:3d} | "
            f"jaw jitter {self.jaw_jitter:.4f}, flicker >8 Hz {self.jaw_flicker:.4f} | "
            f"head jitter {self.head_jitter_deg:.4f} deg"
        )


def lip_gap(track: MotionTrack) -> np.ndarray:
    """Commanded lip opening per frame, 0..1 of a wide-open mouth."""
    return track.channel("jawOpen") * (1.0 - track.channel("mouthClose"))


def _frames_in(track: MotionTrack, start: float, end: float) -> np.ndarray:
    t = (np.arange(track.n_frames) + 0.5) / track.fps
    idx = np.where((t >= start) & (t < end))[0]
    if len(idx) == 0:  # shorter than a frame: the frame nearest its middle
        idx = np.array([int(np.clip(np.argmin(np.abs(t - 0.5 * (start + end))), 0, track.n_frames - 1))])
    return idx


def evaluate(track: MotionTrack, phones: tuple[Phone, ...] | list[Phone]) -> MotionReport:
    gap = lip_gap(track)
    jaw = track.channel("jawOpen")
    bil = [p for p in phones if p.symbol in BILABIALS]
    bil_ok = [bool((gap[_frames_in(track, p.start_s, p.end_s)] < CLOSED_GAP).any()) for p in bil]
    pause_idx = np.concatenate(
        [_frames_in(track, p.start_s, p.end_s) for p in phones if p.symbol == SILENCE and p.duration_s > MIN_PAUSE_S]
        or [np.zeros(0, int)]
    )
    vow = [p for p in phones if p.symbol in OPEN_VOWELS]
    vow_ok = [bool(jaw[_frames_in(track, p.start_s, p.end_s)].max() >= OPEN_JAW) for p in vow]
    d2 = np.diff(jaw, 2)
    # the line from the first to the last value taken off: the FFT treats the clip as periodic, and a
    # clip that starts mid-word would otherwise read its wrap-around step as flicker
    ramp = np.linspace(jaw[0], jaw[-1], len(jaw)) if len(jaw) else jaw
    spec = np.fft.rfft(jaw - ramp)
    freqs = np.fft.rfftfreq(len(jaw), 1.0 / track.fps)
    spec[freqs <= FLICKER_HZ] = 0
    hf = np.fft.irfft(spec, len(jaw))
    head = np.stack([track.channel(c) for c in ("headYaw", "headPitch", "headRoll")], axis=1)
    hd2 = np.diff(head, 2, axis=0)
    return MotionReport(
        bilabials=len(bil),
        bilabial_closed=float(np.mean(bil_ok)) if bil_ok else 1.0,
        pause_frames=int(len(pause_idx)),
        pause_closed=float((gap[pause_idx] < CLOSED_GAP).mean()) if len(pause_idx) else 1.0,
        open_vowels=len(vow),
        open_vowel_open=float(np.mean(vow_ok)) if vow_ok else 1.0,
        jaw_jitter=float(np.sqrt(np.mean(d2**2))) if len(d2) else 0.0,
        jaw_flicker=float(np.sqrt(np.mean(hf**2))) if len(jaw) else 0.0,
        head_jitter_deg=float(np.sqrt(np.mean(hd2**2))) if len(hd2) else 0.0,
    )


def phones_from_segments(segs: list, duration_s: float | None = None) -> list[Phone]:
    """Labelled segments (``tools.eval_align`` ground-truth readers) -> contiguous Phones, gaps as SIL."""
    phones: list[Phone] = []
    t = 0.0
    for seg in segs:
        if seg.start > t + 1e-3:
            phones.append(Phone(t, seg.start, SILENCE))
        label = SILENCE if seg.label in ("?", "") else seg.label
        phones.append(Phone(max(seg.start, t), seg.end, label))
        t = seg.end
    if duration_s is not None and duration_s > t + 1e-3:
        phones.append(Phone(t, duration_s, SILENCE))
    return phones
