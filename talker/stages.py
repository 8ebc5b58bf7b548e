"""The stage types and engines that the server uses, re-exported so ``server`` depends on ``talker`` alone
(layering: audio <- motion <- render <- talker <- server)."""

from __future__ import annotations

from audio.piper_stream import NotStreamable
from audio.piper_tts import PiperTTS, TTSError
from audio.text import TextError, clean_text, split_sentences
from audio.types import SILENCE, TTS, Phone, Speech, SpeechChunk, concat_speech
from motion.generator import MotionStream, MotionStyle
from render.landmarks import LandmarkDetector, MediaPipeFaceMesh, NoFaceError
from render.rig import FaceRig
from render.warp import WarpRenderer

__all__ = [
    "SILENCE",
    "FaceRig",
    "LandmarkDetector",
    "MediaPipeFaceMesh",
    "MotionStream",
    "MotionStyle",
    "NoFaceError",
    "NotStreamable",
    "Phone",
    "PiperTTS",
    "Speech",
    "SpeechChunk",
    "TTS",
    "TTSError",
    "TextError",
    "WarpRenderer",
    "clean_text",
    "concat_speech",
    "split_sentences",
]
