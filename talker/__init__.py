"""talker: one portrait + words -> a video of that face speaking them.

    import talker
    talker.render(text="Hello there", out="hello.mp4")

The names below are imported on first use, so ``import talker`` loads no model and no heavy library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "render": "talker.api",
    "list_voices": "talker.api",
    "voice_for_language": "talker.api",
    "choose_voice": "audio.voices",
    "get_voice": "audio.voices",
    "make_tts": "audio.voices",
    "Voice": "audio.voices",
    "VoiceParams": "audio.voices",
    "VoiceError": "audio.voices",
    "TTS": "audio.types",
    "Pipeline": "talker.pipeline",
    "RenderSettings": "talker.pipeline",
    "RenderResult": "talker.pipeline",
    "Avatar": "talker.pipeline",
    "AVFrame": "talker.pipeline",
    "Speech": "audio.types",
    "SpeechChunk": "audio.types",
    "Phone": "audio.types",
    "MotionTrack": "motion.types",
    "MotionStyle": "motion.generator",
    "Frame": "render.frame",
}

__all__ = [
    "AVFrame",
    "Avatar",
    "Frame",
    "MotionStyle",
    "MotionTrack",
    "Phone",
    "Pipeline",
    "RenderResult",
    "RenderSettings",
    "Speech",
    "SpeechChunk",
    "TTS",
    "Voice",
    "VoiceError",
    "VoiceParams",
    "choose_voice",
    "get_voice",
    "list_voices",
    "make_tts",
    "render",
    "voice_for_language",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'talker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from audio.types import TTS, Phone, Speech, SpeechChunk
    from audio.voices import Voice, VoiceError, VoiceParams, choose_voice, get_voice, make_tts
    from motion.generator import MotionStyle
    from motion.types import MotionTrack
    from render.frame import Frame
    from talker.api import list_voices, render, voice_for_language
    from talker.pipeline import Avatar, AVFrame, Pipeline, RenderResult, RenderSettings
