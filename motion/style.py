"""How lively a face is: the motion style and the expression presets mixed with speech."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Expression:
    """An emotion preset as channel offsets (applied at ``intensity`` 1)."""

    name: str
    offsets: dict[str, float] = field(default_factory=dict)
    articulation: float = 1.0  # scales mouth opening
    head_scale: float = 1.0  # scales head motion
    blink_scale: float = 1.0  # scales blink rate


EXPRESSIONS: dict[str, Expression] = {
    "neutral": Expression("neutral"),
    "happy": Expression("happy", {"mouthSmile": 0.55, "browInnerUp": 0.1, "headPitch": -1.0}, 1.05, 1.2, 1.0),
    "sad": Expression("sad", {"mouthSmile": -0.35, "browInnerUp": 0.45, "headPitch": 3.0}, 0.8, 0.6, 0.8),
    "angry": Expression(
        "angry", {"browDown": 0.7, "mouthSmile": -0.2, "mouthStretch": 0.15, "headPitch": 1.5}, 1.1, 1.1, 0.7
    ),
    "surprised": Expression(
        "surprised",
        {"browInnerUp": 0.85, "eyeWideLeft": 0.6, "eyeWideRight": 0.6, "jawOpen": 0.08, "headPitch": -2.0},
        1.1,
        1.0,
        0.6,
    ),
}


@dataclass(frozen=True)
class MotionStyle:
    """How lively the face is. Amplitudes in degrees; rates per minute."""

    head_amplitude_deg: float = 3.0
    nod_deg: float = 2.2
    blink_per_min: float = 20.0
    gaze_amplitude: float = 0.25
    breathing_deg: float = 0.35
    smile: float = 0.0
    articulation: float = 1.0  # scales mouth opening
    expression: str = "neutral"
    intensity: float = 1.0
    energy: float = 0.5  # 0 calm .. 1 animated; 0.5 moves like the filmed speakers of the reference

    def __post_init__(self) -> None:
        if not 0.0 <= self.energy <= 1.0:
            raise ValueError(f"energy must be within 0 (calm) .. 1 (animated), got {self.energy}")

    @property
    def liveliness(self) -> float:
        """How much ``energy`` scales head motion, nods and brow raises (1 at the filmed middle)."""
        return float(2.0 ** (1.6 * (self.energy - 0.5)))

    @property
    def jaw_range(self) -> float:
        """How much ``energy`` scales the jaw's movement about its speaking height (1 at the middle)."""
        return 0.7 + 0.6 * self.energy

    def with_energy(self, energy: float) -> MotionStyle:
        return replace(self, energy=energy)

    def with_expression(self, name: str, intensity: float = 1.0) -> MotionStyle:
        if name not in EXPRESSIONS:
            raise ValueError(f"unknown expression {name!r}; choose from {', '.join(EXPRESSIONS)}")
        if not 0.0 <= intensity <= 1.5:
            raise ValueError(f"expression intensity must be within 0..1.5, got {intensity}")
        return replace(self, expression=name, intensity=intensity)
