"""The loaded models, shared by every live session and render job of one server process.

Built once in the app's lifespan (or passed in by tests): the Piper voice, the face detector, and the
rigged avatars of the portraits in use. The server adds no model logic here, only sharing rules:
Piper (espeak inside) is not safe to call from two threads at once, so synthesis is serialized, and
live sessions go before render jobs when both wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.portraits import DEFAULT_PORTRAIT, PortraitStore
from talker.persona import (
    AudioVoiceBank,
    Persona,
    PersonaError,
    PersonaMaker,
    PersonaStore,
    persona_avatar,
)
from talker.pipeline import Avatar, Pipeline
from talker.stages import (
    TTS,
    LandmarkDetector,
    LipsyncModel,
    MediaPipeFaceMesh,
    NotStreamable,
    PiperTTS,
    Speech,
    SpeechChunk,
    concat_speech,
)

log = logging.getLogger("talker.server")


class PriorityLock:
    """A mutex where callers marked ``live`` go first: background callers wait while a live one waits."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._live_waiting = 0

    @contextmanager
    def hold(self, live: bool) -> Iterator[None]:
        with self._cond:
            if live:
                self._live_waiting += 1
            try:
                while self._held or (not live and self._live_waiting > 0):
                    self._cond.wait()
            finally:
                if live:
                    self._live_waiting -= 1
            self._held = True
        try:
            yield
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()


class SharedTTS(PiperTTS):
    """``PiperTTS`` whose synthesis is serialized; live sessions call ``synthesize_live`` to go first.

    ``threads``: onnxruntime intra-op threads (None keeps Piper's default session).
    """

    def __init__(self, model_path: str | Path | None = None, threads: int | None = 1) -> None:
        super().__init__(model_path, threads=threads)
        self.gate = PriorityLock()

    def synthesize_sentence(self, sentence: str) -> Speech:
        with self.gate.hold(live=False):
            return super().synthesize_sentence(sentence)

    def synthesize_live(self, sentence: str) -> Speech:
        with self.gate.hold(live=True):
            return PiperTTS.synthesize_sentence(self, sentence)

    def stream_live(self, sentence: str) -> Iterator[Speech]:
        """The sentence in pieces as they are decoded (``audio.piper_stream``): the first one arrives
        after the text encoder and one short decoder window. The gate is held per piece, so other
        sessions' synthesis can go in between."""
        pieces = self.synthesize_stream(sentence)
        yield from _gated(pieces, self.gate, self.synthesize_live, sentence)


class PersonaVoice:
    """A persona's voice from the voice bank (Piper with its own parameters, espeak-ng, flite...), behind
    the shared voice's gate: one synthesis at a time in the process, live sessions first."""

    def __init__(self, tts: TTS, gate: PriorityLock, voice_id: str) -> None:
        self.tts = tts
        self.gate = gate
        self.voice_id = voice_id
        self._warm = False

    def warm(self) -> None:
        """Load the voice now: a new voice's first synthesis loads its model (about a second)."""
        if not self._warm:
            self.synthesize_sentence("Hello.")
            for _ in self.stream_live("Hello."):
                pass
            self._warm = True

    @property
    def sample_rate(self) -> int:
        return self.tts.sample_rate

    def _sentence(self, sentence: str, live: bool) -> Speech:
        with self.gate.hold(live=live):
            chunks = [c.speech for c in self.tts.stream(sentence) if len(c.speech.samples)]
        if not chunks:
            raise ValueError(f"voice {self.voice_id} produced no audio for {sentence!r}")
        return concat_speech(chunks, sentence)

    def synthesize_live(self, sentence: str) -> Speech:
        return self._sentence(sentence, live=True)

    def stream_live(self, sentence: str) -> Iterator[Speech]:
        """Piper voices stream within the sentence (as ``SharedTTS.stream_live``); others give it whole."""
        if isinstance(self.tts, PiperTTS):
            pieces = self.tts.synthesize_stream(sentence)
            yield from _gated(pieces, self.gate, self.synthesize_live, sentence)
        else:
            yield self.synthesize_live(sentence)

    def synthesize_sentence(self, sentence: str) -> Speech:
        return self._sentence(sentence, live=False)

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        """Chunks as the voice yields them (render jobs: yields to live sessions between chunks)."""
        it = iter(self.tts.stream(text))
        while True:
            with self.gate.hold(live=False):
                chunk = next(it, None)
            if chunk is None:
                return
            yield chunk


def _gated(
    pieces: Iterator[Speech], gate: PriorityLock, whole: Callable[[str], Speech], sentence: str
) -> Iterator[Speech]:
    """Step ``pieces`` holding the gate for each step; a voice that cannot be streamed is said whole."""
    first = True
    while True:
        try:
            with gate.hold(live=True):
                piece = next(pieces, None)
        except NotStreamable as e:
            if not first:
                raise
            log.warning("%s; synthesizing whole sentences", e)
            yield whole(sentence)
            return
        if piece is None:
            return
        first = False
        yield piece


_DEFAULT_VOICE_PARAMS = {"rate": 1.0, "pitch_semitones": 0.0, "variant": None, "expressiveness": None, "volume": 1.0}
_SHARED_VOICE_ID = "piper:joe"  # the voice bank's id of the Piper voice the engine loads by default


class Engine:
    """Models and rigged avatars. Thread-safe; every method may block (call it from worker threads)."""

    def __init__(
        self,
        tts: SharedTTS | None = None,
        detector: LandmarkDetector | None = None,
        max_avatars: int = 16,
        tts_threads: int | None = 1,
        lipsync: LipsyncModel | None = None,
        framing: str = "bust",
        lipsync_dir: str | Path | None = None,
    ) -> None:
        """``lipsync``: the audio -> mouth model for audio streamed into sessions (default: loaded on first use
        from ``lipsync_dir``, or the packaged model). ``framing``: how every portrait is framed
        (``talker.portrait.FRAMINGS``)."""
        self.framing = framing
        self.tts = tts or SharedTTS(threads=tts_threads)
        self.detector = detector or MediaPipeFaceMesh()
        self.pipeline = Pipeline(tts=self.tts, detector=self.detector)
        self._avatars: OrderedDict[tuple[str, int, int], Avatar] = OrderedDict()
        self._avatar_lock = threading.Lock()
        self._max_avatars = max_avatars
        self.load_seconds: dict[str, float] = {}
        self._voices: dict[str, SharedTTS | PersonaVoice] = {}
        self._voice_lock = threading.Lock()
        self._lipsync: LipsyncModel | None = lipsync
        self._lipsync_dir = lipsync_dir
        self._lipsync_lock = threading.Lock()

    def load(self, size: tuple[int, int]) -> None:
        """Load the voice (and warm it up), the detector, and rig the default portrait."""
        t0 = time.perf_counter()
        self.tts.synthesize_live("Hello.")
        for _ in self.tts.stream_live("Hello."):  # builds the split decoder (~1.5 s) now, not on the first say
            pass
        t1 = time.perf_counter()
        self.avatar(None, DEFAULT_PORTRAIT, size)
        t2 = time.perf_counter()
        self.lipsync()
        self.load_seconds = {"tts": t1 - t0, "face": t2 - t1, "lipsync": time.perf_counter() - t2}

    def lipsync(self) -> LipsyncModel:
        """The lip-sync model (loaded once; raises ``LipsyncError`` when its files are missing)."""
        with self._lipsync_lock:
            if self._lipsync is None:
                self._lipsync = LipsyncModel.load(self._lipsync_dir)
            return self._lipsync

    @property
    def voice_name(self) -> str:
        return self.tts.model_path.name.removesuffix(".onnx")

    def avatar(self, store: PortraitStore | None, portrait_id: str, size: tuple[int, int]) -> Avatar:
        """The rigged avatar of a portrait at ``size`` (cached; the first call detects the face, ~1 s).

        Raises ``KeyError`` for an unknown portrait, ``talker.portrait.ImageError`` or
        ``render.landmarks.NoFaceError`` for an unusable one.
        """
        key = (portrait_id, size[0], size[1])
        with self._avatar_lock:
            hit = self._avatars.get(key)
            if hit is not None:
                self._avatars.move_to_end(key)
                return hit
            path = None if portrait_id == DEFAULT_PORTRAIT else (store.path(portrait_id) if store else None)
            if portrait_id != DEFAULT_PORTRAIT and path is None:
                raise KeyError(portrait_id)
            avatar = self.pipeline.prepare_avatar(path, size, framing=self.framing)
            self._avatars[key] = avatar
            while len(self._avatars) > self._max_avatars:
                self._avatars.popitem(last=False)
            return avatar

    def prepare_avatar_file(self, path: Path | None, size: tuple[int, int]) -> Avatar:
        """Rig a portrait file (None: the bundled one) without caching it (render jobs)."""
        if path is None:
            return self.avatar(None, DEFAULT_PORTRAIT, size)
        with self._avatar_lock:
            return self.pipeline.prepare_avatar(path, size, framing=self.framing)

    def voice_for(self, voice_id: str, params: dict[str, Any]) -> SharedTTS | PersonaVoice:
        """The voice of a persona: the shared Piper voice when it is that voice unchanged, else a bank
        voice with the persona's parameters (built once per id + parameters; loads lazily).

        Raises ``talker.persona.PersonaError`` for unknown voices or bad parameters.
        """
        full = {**_DEFAULT_VOICE_PARAMS, **params}
        if voice_id == _SHARED_VOICE_ID and full == _DEFAULT_VOICE_PARAMS:
            return self.tts
        key = f"{voice_id}|{sorted(full.items(), key=lambda kv: kv[0])}"
        with self._voice_lock:
            voice = self._voices.get(key)
            if voice is None:
                try:
                    tts = AudioVoiceBank(use_embeddings=False).tts(voice_id, params)
                except ValueError as e:  # VoiceError: an unknown id or bad parameters
                    raise PersonaError(f"persona voice {voice_id!r} cannot be used: {e}") from e
                if isinstance(tts, PiperTTS) and tts.threads is None:
                    tts.threads = self.tts.threads  # not loaded yet: its session gets the server's threads
                voice = self._voices[key] = PersonaVoice(tts, self.tts.gate, voice_id)
            return voice

    def persona_avatar(self, persona: Persona, size: tuple[int, int], cache: bool = True) -> Avatar:
        """A persona's rigged face at ``size`` (its five points when stored, else the detector's face)."""
        key = (f"persona:{persona.id}", size[0], size[1])
        with self._avatar_lock:
            hit = self._avatars.get(key) if cache else None
            if hit is not None:
                self._avatars.move_to_end(key)
                return hit
            avatar = persona_avatar(persona, self.detector, size, self.framing)
            if cache:
                self._avatars[key] = avatar
                while len(self._avatars) > self._max_avatars:
                    self._avatars.popitem(last=False)
            return avatar

    def create_persona(self, store: PersonaStore, maker: PersonaMaker, **kwargs: Any) -> Any:
        """``store.create(..., maker=maker)`` with the shared detector (not thread-safe: serialized)."""
        with self._avatar_lock:
            return store.create(maker=maker, **kwargs)

    def forget(self, portrait_id: str) -> None:
        with self._avatar_lock:
            for key in [k for k in self._avatars if k[0] == portrait_id]:
                del self._avatars[key]
