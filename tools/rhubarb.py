"""Rhubarb Lip Sync's mouth-shape rules, as a baseline to compare our motion with.

Rhubarb (github.com/DanielSWolf/rhubarb-lip-sync, README "Mouth shapes") animates with nine
Preston-Blair shapes: A closed (P B M), B slightly open with clenched teeth (most consonants, EE),
C open (EH, AE), D wide open (AA), E slightly rounded (AO, ER), F puckered (UW, OW, W), G upper teeth
on lower lip (F, V), H tongue raised (long L), X rest (pauses). This module maps phones to those shapes
with the rules of that README, and classifies our continuous channels into the same shapes.
"""

from __future__ import annotations

import numpy as np

from audio.types import SILENCE, Phone
from motion.types import MotionTrack

SHAPES = "ABCDEFGHX"

_PHONE_SHAPE = {
    "P": "A",
    "B": "A",
    "M": "A",
    "F": "G",
    "V": "G",
    "L": "H",
    "AA": "D",
    "AY": "D",
    "AW": "D",
    "AH": "C",
    "EH": "C",
    "AE": "C",
    "EY": "C",
    "AO": "E",
    "ER": "E",
    "R": "E",
    "OY": "E",
    "UW": "F",
    "OW": "F",
    "W": "F",
    "UH": "F",
    "IY": "B",
    "IH": "B",
    SILENCE: "X",
}


def phone_shape(symbol: str) -> str:
    """Rhubarb's shape for a phone (consonants not listed use B, clenched teeth)."""
    return _PHONE_SHAPE.get(symbol, "B")


def rhubarb_frames(phones: list[Phone] | tuple[Phone, ...], n_frames: int, fps: float) -> list[str]:
    t = (np.arange(n_frames) + 0.5) / fps
    out = ["X"] * n_frames
    for p in phones:
        sel = np.where((t >= p.start_s) & (t < p.end_s))[0]
        for k in sel:
            out[int(k)] = phone_shape(p.symbol)
    return out


def classify(track: MotionTrack) -> list[str]:
    """Our channels per frame, read as the nearest Rhubarb shape."""
    jaw = track.channel("jawOpen")
    gap = jaw * (1 - track.channel("mouthClose"))
    pucker = track.channel("mouthPucker")
    funnel = track.channel("mouthFunnel")
    roll = track.channel("mouthRollLower")
    out = []
    for k in range(track.n_frames):
        if roll[k] > 0.5:
            out.append("G")
        elif gap[k] < 0.04:
            out.append("A")
        elif pucker[k] > 0.5:
            out.append("F")
        elif funnel[k] > 0.3:
            out.append("E")
        elif jaw[k] >= 0.5:
            out.append("D")
        elif jaw[k] >= 0.3:
            out.append("C")
        else:
            out.append("B")
    return out


def agreement(ours: list[str], theirs: list[str]) -> float:
    """Fraction of frames with the same shape (closed A and rest X count as one; so do H and B,
    since our model has no separate tongue-up shape for L)."""
    norm = {"X": "A", "H": "B"}
    same = [norm.get(a, a) == norm.get(b, b) for a, b in zip(ours, theirs)]
    return float(np.mean(same)) if same else 1.0
