"""The stage types and engines that the server uses, re-exported so ``server`` depends on ``talker`` alone
(layering: audio <- motion <- render <- talker <- server)."""

from __future__ import annotations

from audio.io import resample
from audio.piper_stream import NotStreamable
from audio.piper_tts import PiperTTS, TTSError
from audio.text import TextError, clean_text, split_sentences
from audio.types import SILENCE, TTS, Phone, Speech, SpeechChunk, concat_speech
from motion.generator import MotionStream, MotionStyle
from motion.idle import IDLE_LOOP_S
from motion.lipsync import LipsyncError, LipsyncModel
from motion.live import MixedMotionStream
from motion.types import CHANNEL_INDEX
from render.landmarks import LandmarkDetector, MediaPipeFaceMesh, NoFaceError
from render.reuse import Drawn, ReusingRenderer, StillFrames, reuse_px
from render.rig import FaceRig
from render.warp import WarpRenderer

__all__ = [
    "CHANNEL_INDEX",
    "SILENCE",
    "IDLE_LOOP_S",
    "Drawn",
    "FaceRig",
    "LandmarkDetector",
    "LipsyncError",
    "LipsyncModel",
    "MediaPipeFaceMesh",
    "MixedMotionStream",
    "MotionStream",
    "MotionStyle",
    "NoFaceError",
    "NotStreamable",
    "Phone",
    "PiperTTS",
    "ReusingRenderer",
    "Speech",
    "SpeechChunk",
    "StillFrames",
    "TTS",
    "TTSError",
    "TextError",
    "WarpRenderer",
    "clean_text",
    "concat_speech",
    "resample",
    "reuse_px",
    "split_sentences",
]
