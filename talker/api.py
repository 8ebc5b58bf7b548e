"""The one-call entry point, ``talker.render``, and voice listing by language.

``render`` builds a ``Pipeline`` for the voice asked for (kept for the next call in this process) and
renders text or a recording on a portrait into an MP4.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audio import voices as _voices
from audio.voices import DEFAULT_VOICE_ID, Voice, VoiceError
from motion.lipsync import LipsyncModel
from talker.avatar_player import VideoAvatar, load_video_avatar
from talker.pipeline import Pipeline, RenderResult, RenderSettings
from talker.portrait import FRAMINGS, parse_size

_pipelines: dict[str, Pipeline] = {}
_pipelines_lock = threading.Lock()
EXPRESSIONS = ("neutral", "happy", "sad", "angry", "surprised")


def _language_tag(language: str) -> str:
    return language.strip().lower().replace("_", "-")


def _speaks(voice: Voice, language: str) -> bool:
    """Whether ``voice`` speaks ``language``: a tag ("fr", "en-gb") or a name ("French")."""
    tag = _language_tag(language)
    if voice.language == tag or voice.language.startswith(tag + "-"):
        return True
    return bool(voice.language_name) and voice.language_name.lower().startswith(language.strip().lower())


def list_voices(language: str | None = None) -> list[Voice]:
    """Every voice in the bank (id, backend, language, gender, age, description), or those that speak
    ``language`` (a tag such as ``"de"`` or ``"en-gb"``, or a name such as ``"German"``)."""
    bank = _voices.list_voices()
    return bank if not language else [v for v in bank if _speaks(v, language)]


def voice_for_language(language: str) -> Voice:
    """The default voice for a language: a Piper voice when one speaks it, else espeak-ng's plain voice
    (no variant), the language's main variety first (``"fr"`` -> ``fr-fr``). Raises ``VoiceError``."""
    cands = list_voices(language)
    if not cands:
        raise VoiceError(f"no voice speaks {language!r} (see `talker voices` for the languages)")
    order = {"piper": 0, "espeak": 1}
    tag = _language_tag(language)
    main = (tag, f"{tag}-{tag}")

    def rank(v: Voice) -> tuple[int, bool, bool, int, str]:
        return order.get(v.backend, 2), bool(v.params.variant), v.language not in main, len(v.language), v.id

    return min(cands, key=rank)


def resolve_voice(voice: str | Voice | None = None, language: str | None = None) -> Voice | None:
    """The voice a render uses: ``voice`` (an id or a ``Voice``) when given, else the language's default
    voice, else None (the default Piper voice). A voice that does not speak ``language`` is an error."""
    if voice is not None:
        v = _voices.get_voice(voice) if isinstance(voice, str) else voice
        if language and not _speaks(v, language):
            raise VoiceError(f"voice {v.id} speaks {v.language}, not {language!r}")
        return v
    return voice_for_language(language) if language else None


def pipeline_for(voice: Voice | None = None) -> Pipeline:
    """A ``Pipeline`` speaking with ``voice`` (None: the default Piper voice), one per voice and process."""
    key = voice.id if voice is not None else DEFAULT_VOICE_ID
    if voice is not None:
        key += repr(voice.params)
    with _pipelines_lock:
        if key not in _pipelines:
            _pipelines[key] = Pipeline() if voice is None else Pipeline(tts=_voices.make_tts(voice))
        return _pipelines[key]


def render(
    text: str | None = None,
    out: str | Path = "talker.mp4",
    face: str | Path | np.ndarray | None = None,
    voice: str | Voice | None = None,
    *,
    language: str | None = None,
    audio: str | Path | None = None,
    lipsync: bool | str | Path | None = None,
    size: int | tuple[int, int] | str | None = 512,
    framing: str = "bust",
    fps: float = 25.0,
    seed: int = 0,
    expression: str = "neutral",
    intensity: float = 1.0,
    face_index: int | None = None,
    avatar: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RenderResult:
    """Render a portrait speaking ``text`` (or the recording ``audio``) into the MP4 ``out``.

    face: a portrait path or an RGB uint8 array (default: the bundled portrait). voice: a voice id from
    ``list_voices()`` such as ``"espeak:en-gb+f3"``, or a ``Voice``; language: pick the voice for a language
    instead. audio: recorded speech to lip-sync: without ``text`` the learned lip-sync model drives the mouth
    from the sound (any voice, any language); with ``text`` (its English transcript) the lips follow phones
    force-aligned by pocketsphinx. lipsync: True for the model even with a transcript, a model folder
    (``talker train-lipsync``) for that model, False for pocketsphinx (English recognition without
    ``text``). size: 512,
    (width, height), "640x480", or None/"source" for the portrait's own size. framing: "bust" (head and
    shoulders), "head" (closer) or "source" (the whole picture), at one eye height and scale. fps: 1-60.
    seed: blinks and head motion. expression: neutral, happy, sad, angry or surprised, at ``intensity`` (0-1.5).
    avatar: a video avatar's name (``talker avatar create``, kept in ``data_dir``) or folder, in place of
    ``face``: its own clip plays, the mouth re-rendered; size, framing and fps are the avatar's.
    Returns the ``RenderResult`` (path, frame count, duration, per-stage timings, notes).
    """
    from motion.generator import MotionStyle

    if text is None and audio is None:
        raise ValueError("give the words: text=..., or a recording with audio=...")
    if not 0 < fps <= 60:
        raise ValueError(f"fps must be within 1-60, got {fps}")
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
    if expression not in EXPRESSIONS:
        raise ValueError(f"expression must be one of {', '.join(EXPRESSIONS)}, got {expression!r}")
    if size is None or size == "source":
        wh = None
    elif isinstance(size, int):
        wh = (size, size)
    elif isinstance(size, str):
        wh = parse_size(size)
    else:
        wh = (int(size[0]), int(size[1]))
    settings = RenderSettings(
        fps=fps, size=wh, seed=seed, face_index=face_index, framing=framing,
        style=MotionStyle().with_expression(expression, intensity),
    )  # fmt: skip
    target: str | Path | np.ndarray | VideoAvatar | None = face
    if avatar is not None:
        if face is not None:
            raise ValueError("give a portrait (face=...) or a video avatar (avatar=...), not both")
        target = load_video_avatar(avatar, data_dir)
    if lipsync is not None and audio is None:
        raise ValueError("lipsync chooses how a recording drives the mouth: use it with audio=...")
    if audio is not None:
        if voice is not None or language is not None:
            raise ValueError("voice and language choose a TTS voice: not used with a recording (audio=...)")
        if lipsync is False or (lipsync is None and text is not None):
            return pipeline_for(None).render_audio(audio, out, target, text, settings, progress, align=True)
        if text is not None:
            raise ValueError("lipsync reads the mouth from the sound alone: a transcript (text=...) is not used")
        own = None if lipsync is None or isinstance(lipsync, bool) else lipsync
        pipeline = pipeline_for(None) if own is None else Pipeline(lipsync=LipsyncModel.load(own))
        return pipeline.render_audio(audio, out, target, None, settings, progress, align=False)
    assert text is not None
    return pipeline_for(resolve_voice(voice, language)).render_text(text, out, target, settings, progress)
