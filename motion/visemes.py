"""Phones -> visemes -> mouth-channel targets, with coarticulation parameters.

Visemes follow the 15 Meta/Oculus visemes (sil, PP, FF, TH, DD, kk, CH, SS, nn, RR, aa, E, ih, oh, ou).
Each ARPAbet phone maps to one target (vowel diphthongs to two, onset and offset); each target has a
dominance (how strongly it resists its neighbours) used by Cohen-Massaro blending.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Viseme:
    name: str
    jaw: float  # jawOpen target (absolute: 0 lips together)
    funnel: float = 0.0
    pucker: float = 0.0
    stretch: float = 0.0
    roll_lower: float = 0.0
    dominance: float = 1.0  # pull on lip-shape channels
    closure: bool = False  # lips must meet (bilabials)
    jaw_dominance: float | None = None  # pull on jawOpen (default: ``dominance``)


VISEMES: dict[str, Viseme] = {
    "sil": Viseme("sil", 0.0, dominance=0.9),
    # the lips close p/b/m (mouthClose plateau); the jaw stays near its neighbours' height
    "PP": Viseme("PP", 0.05, dominance=6.0, closure=True, jaw_dominance=0.6),
    "FF": Viseme("FF", 0.12, roll_lower=1.0, dominance=3.0, jaw_dominance=1.2),
    "TH": Viseme("TH", 0.22, stretch=0.1, dominance=1.5),
    "DD": Viseme("DD", 0.26, stretch=0.1, dominance=0.7),
    "kk": Viseme("kk", 0.30, dominance=0.6),
    "CH": Viseme("CH", 0.18, funnel=0.7, pucker=0.35, dominance=2.0, jaw_dominance=1.0),
    "SS": Viseme("SS", 0.12, stretch=0.35, dominance=1.6, jaw_dominance=1.0),
    "nn": Viseme("nn", 0.24, dominance=0.6),
    "RR": Viseme("RR", 0.24, funnel=0.45, pucker=0.35, dominance=1.2),
    "aa": Viseme("aa", 0.66, stretch=0.1, dominance=1.3, jaw_dominance=1.8),
    "E": Viseme("E", 0.48, stretch=0.3, dominance=1.1, jaw_dominance=1.5),
    "ih": Viseme("ih", 0.34, stretch=0.4, dominance=1.0),
    "oh": Viseme("oh", 0.50, funnel=0.6, pucker=0.3, dominance=1.2, jaw_dominance=1.6),
    "ou": Viseme("ou", 0.22, funnel=0.4, pucker=0.9, dominance=1.6),
    "HH": Viseme("HH", 0.36, dominance=0.15),
}

# ARPAbet -> viseme(s). Diphthongs: (onset, offset).
PHONE_VISEMES: dict[str, tuple[str, ...]] = {
    "SIL": ("sil",),
    "P": ("PP",),
    "B": ("PP",),
    "M": ("PP",),
    "F": ("FF",),
    "V": ("FF",),
    "TH": ("TH",),
    "DH": ("TH",),
    "T": ("DD",),
    "D": ("DD",),
    "K": ("kk",),
    "G": ("kk",),
    "NG": ("kk",),
    "CH": ("CH",),
    "JH": ("CH",),
    "SH": ("CH",),
    "ZH": ("CH",),
    "S": ("SS",),
    "Z": ("SS",),
    "N": ("nn",),
    "L": ("nn",),
    "R": ("RR",),
    "ER": ("RR",),
    "W": ("ou",),
    "Y": ("ih",),
    "HH": ("HH",),
    "AA": ("aa",),
    "AE": ("aa",),
    "AH": ("aa",),
    "AO": ("oh",),
    "AW": ("aa", "ou"),
    "AY": ("aa", "ih"),
    "EY": ("E", "ih"),
    "OY": ("oh", "ih"),
    "EH": ("E",),
    "IH": ("ih",),
    "IY": ("ih",),
    "OW": ("oh", "ou"),
    "UH": ("ou",),
    "UW": ("ou",),
}

OPEN_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY"}
BILABIALS = {"P", "B", "M"}


def visemes_for(phone: str) -> tuple[Viseme, ...]:
    """Viseme targets of an ARPAbet phone (unknown phones get a neutral mid-open shape)."""
    names = PHONE_VISEMES.get(phone.upper().rstrip("012"), ("HH",))
    return tuple(VISEMES[n] for n in names)
