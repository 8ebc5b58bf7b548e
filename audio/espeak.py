# Over 400 lines: one idea, the ctypes binding to libespeak-ng (its structs, synthesis, voices).
"""ctypes binding to libespeak-ng as shipped by PyPI ``espeakng-loader`` (library + data folder).

Used for two things: grapheme-to-phoneme conversion (``text_to_ipa``, for words the aligner's dictionary
lacks) and synthesis with exact phoneme events (``synthesize``, for ``EspeakTTS``). libespeak-ng keeps
global state, so every call goes through one process-wide lock; the library is loaded on first use,
never at import.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_PHONEMES_IPA = 0x02
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_SENTENCE = 2
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_EVENT_SAMPLERATE = 8
PARAM_RATE = 1  # words per minute, 80..450 (175 default)
PARAM_VOLUME = 2  # 0..200 (100 default)
PARAM_PITCH = 3  # base pitch 0..100 (50 default)
PARAM_RANGE = 4  # pitch range 0..100 (50 default)
PARAM_WORDGAP = 7  # extra pause between words, units of 10 ms at the default rate


class EspeakError(RuntimeError):
    """libespeak-ng is missing, failed to initialise, or rejected a voice or text."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class EspeakEvent:
    """A synthesis event: ``kind`` is "phoneme" (``label`` IPA), "word" (``label`` the word text) or "end".

    ``sample`` is the index in the output audio at which it starts; ``text_pos``/``text_len`` locate a word
    in the input (characters, 1-based as libespeak-ng reports them).
    """

    kind: str
    sample: int
    label: str
    text_pos: int = 0
    text_len: int = 0


@dataclass(frozen=True)
class EspeakVoiceInfo:
    """One voice file: ``identifier`` (e.g. "gmw/en-US"), ``name``, ``languages`` (most preferred first)."""

    identifier: str
    name: str
    languages: tuple[str, ...]
    gender: int  # 0 none, 1 male, 2 female
    age: int


def data_path() -> Path:
    """espeak-ng data folder shipped by ``espeakng-loader``."""
    try:
        import espeakng_loader
    except ImportError as e:
        raise EspeakError("espeak-ng is not available: pip install espeakng-loader") from e
    return Path(espeakng_loader.get_data_path())


class _Espeak:
    """The loaded library (one per process)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:
            raise EspeakError("espeak-ng is not available: pip install espeakng-loader") from e
        lib_path = espeakng_loader.get_library_path()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as e:
            raise EspeakError(f"cannot load libespeak-ng from {lib_path}: {e}") from e
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        path = str(data_path()).encode()
        sr = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 200, path, _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        )
        if sr <= 0:
            raise EspeakError(f"espeak_Initialize failed (data folder {path.decode()})")
        self.lib = lib
        self.sample_rate = int(sr)
        self.lock = threading.RLock()
        self._voice: str | None = None
        # the active synthesis sink; the C callback is created once and kept alive here
        self._sink: Callable[[Any, int, Any], int] | None = None
        self._callback = _CALLBACK(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav: Any, n: int, events: Any) -> int:
        sink = self._sink
        if sink is None:
            return 0
        return sink(wav, n, events)

    def set_voice(self, name: str) -> None:
        if name == self._voice:
            return
        err = self.lib.espeak_SetVoiceByName(name.encode())
        if err != 0:
            raise EspeakError(f"espeak-ng has no voice {name!r}")
        self._voice = name


def resolve_voice(name: str) -> str:
    """A name libespeak-ng accepts for ``name``: itself, or the voice file of a language code ("en-gb" ->
    "gmw/en"), keeping a "+variant" suffix. Raises ``EspeakError`` if no voice matches."""
    es = _get()
    base, plus, variant = name.partition("+")
    with es.lock:
        try:
            es.set_voice(name)
            return name
        except EspeakError:
            pass
    key = base.strip().lower()
    for v in list_voices():
        if key in (v.identifier.lower(), v.identifier.lower().rsplit("/", 1)[-1], v.name.lower()) or key in (
            lang.lower() for lang in v.languages[:1]
        ):
            cand = v.identifier + (plus + variant if variant else "")
            with es.lock:
                try:
                    es.set_voice(cand)
                    return cand
                except EspeakError:
                    break
    raise EspeakError(f"espeak-ng has no voice {name!r} (see audio.espeak.list_voices())")


_instance: _Espeak | None = None
_instance_lock = threading.Lock()


def _get() -> _Espeak:
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = _Espeak()
        return _instance


def sample_rate() -> int:
    """Output rate of espeak-ng's synthesizer in Hz (22050)."""
    return _get().sample_rate


def text_to_ipa(text: str, voice: str = "en-us") -> list[str]:
    """IPA for ``text``, one string per clause, words separated by spaces, stress marks ˈ ˌ kept."""
    es = _get()
    buf = ctypes.create_string_buffer(text.encode("utf-8"))
    ptr = ctypes.c_void_p(ctypes.addressof(buf))
    out: list[str] = []
    with es.lock:
        es.set_voice(voice)
        for _ in range(100_000):  # one call per clause; the pointer becomes NULL at the end
            if not ptr.value:
                break
            res = es.lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, _PHONEMES_IPA)
            if res:
                s = res.decode("utf-8", errors="replace").strip()
                if s:
                    out.append(s)
    return out


def synthesize(
    text: str,
    voice: str,
    *,
    rate_wpm: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    volume: int = 100,
    word_gap: int = 0,
    ssml: bool = False,
) -> tuple[list[Any], list[EspeakEvent]]:
    """Synthesize ``text``; returns (int16 sample blocks as numpy arrays, events in order).

    Args:
        voice: an espeak-ng voice name, optionally with a variant, e.g. "en-us", "en-gb+f3".
        rate_wpm: speaking rate in words per minute (80-450).
        pitch, pitch_range: base pitch and its range, 0-100.
    """
    import numpy as np

    es = _get()
    blocks: list[np.ndarray] = []
    events: list[EspeakEvent] = []
    total = [0]

    def sink(wav: Any, n: int, evs: Any) -> int:
        i = 0
        while True:
            ev = evs[i]
            if ev.type == _EVENT_LIST_TERMINATED:
                break
            if ev.type == _EVENT_PHONEME:
                label = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", errors="replace")
                events.append(EspeakEvent("phoneme", int(ev.sample), label))
            elif ev.type == _EVENT_WORD:
                events.append(EspeakEvent("word", int(ev.sample), "", int(ev.text_position), int(ev.length)))
            elif ev.type in (_EVENT_END, _EVENT_MSG_TERMINATED):
                events.append(EspeakEvent("end", int(ev.sample), ""))
            i += 1
        if wav and n > 0:
            blocks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            total[0] += n
        return 0

    data = text.encode("utf-8") + b"\0"
    flags = _CHARS_UTF8 | (0x10 if ssml else 0)
    with es.lock:
        es.set_voice(voice)
        for param, value in (
            (PARAM_RATE, rate_wpm),
            (PARAM_PITCH, pitch),
            (PARAM_RANGE, pitch_range),
            (PARAM_VOLUME, volume),
            (PARAM_WORDGAP, word_gap),
        ):
            es.lib.espeak_SetParameter(param, int(value), 0)
        es._sink = sink
        try:
            err = es.lib.espeak_Synth(data, len(data), 0, 0, 0, flags, None, None)
            es.lib.espeak_Synchronize()
        finally:
            es._sink = None
        # a later set_voice must reload: SetParameter does not survive a voice change
        es._voice = None
    if err != 0:
        raise EspeakError(f"espeak_Synth failed with code {err} for {text[:60]!r}")
    return blocks, events


def list_voices() -> list[EspeakVoiceInfo]:
    """All language voices espeak-ng knows (not the variants; see ``list_variants``)."""
    es = _get()
    out: list[EspeakVoiceInfo] = []
    with es.lock:
        arr = es.lib.espeak_ListVoices(None)
        i = 0
        while arr[i]:
            v = arr[i].contents
            out.append(
                EspeakVoiceInfo(
                    identifier=(v.identifier or b"").decode(),
                    name=(v.name or b"").decode(),
                    languages=_parse_languages(v.languages),
                    gender=int(v.gender),
                    age=int(v.age),
                )
            )
            i += 1
    return out


def _parse_languages(addr: int | None) -> tuple[str, ...]:
    """espeak_VOICE.languages: repeated (priority byte, NUL-terminated name), ending with a zero byte."""
    if not addr:
        return ()
    langs: list[str] = []
    off = 0
    for _ in range(64):
        prio = ctypes.c_ubyte.from_address(addr + off).value
        if prio == 0:
            break
        name = ctypes.string_at(addr + off + 1)
        langs.append(name.decode(errors="replace"))
        off += 2 + len(name)
    return tuple(langs)


@dataclass(frozen=True)
class EspeakVariant:
    """A voice variant file in ``voices/!v`` (e.g. "f3"): name, gender, age (0 unknown), pitch range in Hz."""

    id: str
    name: str
    gender: str  # "male" | "female" | ""
    pitch_hz: tuple[int, int] | None
    klatt: bool
    age: int = 0


def list_variants() -> list[EspeakVariant]:
    """Variants that can be appended to any voice name as "+id" (read from the data folder)."""
    folder = data_path() / "voices" / "!v"
    out: list[EspeakVariant] = []
    for f in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not f.is_file():
            continue
        name, gender, pitch, klatt, age = f.name, "", None, False, 0
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("//", 1)[0].split()
            if not parts:
                continue
            key = parts[0].lower()
            if key == "name" and len(parts) > 1:
                name = " ".join(parts[1:])
            elif key == "gender" and len(parts) > 1:
                gender = parts[1].lower()
                if len(parts) > 2 and parts[2].isdigit():
                    age = int(parts[2])
            elif key == "pitch" and len(parts) > 2:
                try:
                    pitch = (int(parts[1]), int(parts[2]))
                except ValueError:
                    pass
            elif key == "klatt":
                klatt = True
        out.append(EspeakVariant(f.name, name, gender, pitch, klatt, age))
    return out


def voice_usable(info: EspeakVoiceInfo) -> bool:
    """Whether the data folder has the pronunciation dictionary this voice needs (some ship without)."""
    root = data_path()
    dictionary = (info.languages[0] if info.languages else info.identifier.rsplit("/", 1)[-1]).split("-")[0]
    vf = root / "lang" / info.identifier
    if vf.is_file():
        for line in vf.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("//", 1)[0].split()
            if len(parts) >= 2 and parts[0] == "dictionary":
                dictionary = parts[1]
                break
    return (root / f"{dictionary}_dict").is_file()
