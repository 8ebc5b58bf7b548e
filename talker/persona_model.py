"""The persona: a face, a voice and a manner (``Persona``), its limits, idle styles and errors."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from motion.generator import EXPRESSIONS, MotionStyle
from talker.chat import ChatSettings
from talker.points import check_points

DB_NAME = "personas.sqlite3"
FACES_DIR = "persona_faces"
SCHEMA_VERSION = 1
MAX_DESCRIPTION_CHARS = 2000
MAX_NAME_CHARS = 80

IDLE_STYLES: dict[str, MotionStyle] = {
    "calm": MotionStyle(
        head_amplitude_deg=1.0, nod_deg=0.9, blink_per_min=13.0, gaze_amplitude=0.15, breathing_deg=0.3, energy=0.25
    ),
    "neutral": MotionStyle(),
    "lively": MotionStyle(
        head_amplitude_deg=2.6, nod_deg=2.2, blink_per_min=21.0, gaze_amplitude=0.35, breathing_deg=0.45, energy=0.8
    ),
}
"""Idle and speaking manner: how much the head drifts and nods, how often the eyes blink and wander, and
the motion's ``energy`` (calm 0.25, neutral 0.5: the filmed middle, lively 0.8)."""


class PersonaError(ValueError):
    """A persona cannot be created or used (bad field, image without a face, unknown id)."""


class PersonaNotFound(PersonaError, KeyError):
    """No persona with that id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "persona not found"


# --- the persona ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    """Everything needed to speak as someone.

    voice_params: the voice bank's ``VoiceParams`` fields (rate, pitch_semitones, variant, expressiveness,
    volume). face_path: the image file (in the store once saved). face_points: five (x, y) pixels of that
    image when the face is given by points (``talker.points``), else None (the detector finds it).
    face_source: "image", "bundled:<name>", "generated" or "generated-from-image".
    """

    id: str
    name: str
    description: str
    voice_id: str
    voice_params: dict[str, Any] = field(default_factory=dict)
    face_path: str = ""
    face_source: str = "image"
    face_points: tuple[tuple[float, float], ...] | None = None
    expression: str = "neutral"
    intensity: float = 1.0
    idle: str = "neutral"
    chat: ChatSettings = field(default_factory=ChatSettings)
    created_at: float = 0.0

    def __post_init__(self) -> None:
        if self.expression not in EXPRESSIONS:
            raise PersonaError(f"unknown expression {self.expression!r}; choose from {', '.join(EXPRESSIONS)}")
        if not 0.0 <= self.intensity <= 1.5:
            raise PersonaError(f"expression intensity must be within 0..1.5, got {self.intensity}")
        if self.idle not in IDLE_STYLES:
            raise PersonaError(f"unknown idle style {self.idle!r}; choose from {', '.join(IDLE_STYLES)}")
        if len(self.name) > MAX_NAME_CHARS:
            raise PersonaError(f"persona name is {len(self.name)} characters; the limit is {MAX_NAME_CHARS}")
        if len(self.description) > MAX_DESCRIPTION_CHARS:
            raise PersonaError(
                f"persona description is {len(self.description)} characters; the limit is {MAX_DESCRIPTION_CHARS}"
            )
        if self.face_points is not None:
            check_points(np.asarray(self.face_points, np.float64))

    def motion_style(self) -> MotionStyle:
        """The persona's idle style with its expression mixed in."""
        return IDLE_STYLES[self.idle].with_expression(self.expression, self.intensity)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["chat"] = self.chat.to_dict()
        d["face_points"] = [list(p) for p in self.face_points] if self.face_points is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Persona:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["chat"] = ChatSettings.from_dict(d.get("chat") or {})
        pts = d.get("face_points")
        kw["face_points"] = tuple((float(x), float(y)) for x, y in pts) if pts else None
        kw["voice_params"] = dict(d.get("voice_params") or {})
        return cls(**kw)
