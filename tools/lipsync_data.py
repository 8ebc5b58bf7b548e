"""Training data for the learned lip-sync model: synthetic speech with exact phone timings -> mouth targets.

    python -m tools.lipsync_data OUT_DIR [--minutes 150] [--val-minutes 8] [--seed 0] [--piper 0.35]

Speech comes from espeak-ng (many languages x voice variants x rate/pitch) and the bundled Piper voice,
each reporting the exact sample where every phone starts. Text is generated per language from syllables
written in that language's letters (espeak-ng reads them by its spelling rules), plus English sentences.
Each utterance is then degraded the way real input arrives (tempo/pitch by resampling, gain, reverb,
noise at several SNRs, 8 kHz telephone band, MP3/Opus round trips) and paired with the phonetic
generator's mouth channels at 50 frames per second (``motion.lipsync.mouth_targets``). ``--festival``,
``--flite`` and ``--corpus`` add recorded speakers (Festival's and flite's voices, labelled real recordings
from ``tools.recorded_corpus``). Clips of noise,
tone sweeps and chords with a closed mouth as target teach that non-speech does not move the lips.

OUT_DIR/train/*.npz and OUT_DIR/val/*.npz: ``audio`` int16 at 16 kHz (utterances end to end),
``offsets`` (utterance start samples, plus the end), ``targets`` float16 (frames, channels),
``visemes`` uint8, ``frame_offsets``; OUT_DIR/*/index.jsonl describes every utterance. The validation
split uses voices never seen in training (Italian, Polish, Turkish espeak-ng voices).
Same seed, same data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio.effects import pitch_shift
from audio.espeak_tts import EspeakParams, EspeakTTS, EspeakTTSError
from audio.io import resample
from audio.mel import FRAME_RATE, SAMPLE_RATE, n_frames_for
from audio.text import TextError
from audio.types import SILENCE, Phone, Speech, concat_speech, silence
from motion.lipsync import OUTPUTS, mouth_targets
from tools.recorded_corpus import CorpusError, Recording, load, recordings

TRAIN_LANGS = (
    "en-us", "en-gb", "de", "fr", "es", "pt", "nl", "sv", "da", "nb", "fi", "cs", "sk", "hu", "ro", "id",
    "sw", "vi", "hr", "sl", "et", "lv", "lt", "eu", "ca", "af", "cy", "is", "ms", "sq", "eo", "la",
)  # fmt: skip
VAL_LANGS = ("it", "pl", "tr")
VARIANTS = (
    None, "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt4",
    "Alex", "Annie", "Andy", "Gene", "Lee", "Mario", "Storm", "grandma", "grandpa", "Linda", "john", "max",
)  # fmt: skip
# letters per language family, so pseudo-words exercise each language's spelling rules
_EXTRA = {
    "de": "äöüß", "fi": "äö", "sv": "äöå", "da": "æøå", "nb": "æøå", "fr": "éèàç", "es": "ñé", "pt": "ãçé",
    "cs": "čřšžě", "sk": "čšžä", "hu": "öőüé", "ro": "ăâș", "pl": "łżąę", "tr": "çşğıö", "is": "þðæ",
    "hr": "čšž", "sl": "čšž", "et": "äõü", "lv": "āēš", "lt": "ąčš", "it": "èò", "ca": "çèò", "cy": "ŵŷ",
}  # fmt: skip
_ONSETS = [
    "p", "b", "m", "t", "d", "n", "k", "g", "f", "v", "s", "z", "l", "r", "h", "j", "w", "ch", "sh", "th",
    "pr", "br", "pl", "bl", "tr", "dr", "kr", "gr", "fl", "fr", "st", "sp", "sm", "sn", "", "",
]  # fmt: skip
_CODAS = ["", "", "", "n", "m", "s", "t", "r", "l", "k", "p", "b", "nd", "st", "mp", "ng"]
_VOWELS = ["a", "e", "i", "o", "u", "a", "o", "e", "ai", "ou", "au", "ee", "oo"]
_ENGLISH = (
    "the quick brown fox jumps over the lazy dog",
    "pack my box with five dozen liquor jugs",
    "bright vixens jump while dozy fowl quack",
    "maybe we should meet by the pier at seven",
    "my mother made a batch of plum jam",
    "people paid big money for the map",
    "we waited while the wind blew over the warm moor",
    "how about a bowl of soup before the show",
    "please bring me the blue book from the bottom shelf",
    "the baby bumped her lip on the mop",
    "open the window and look at the moon",
    "a thousand birds flew above the bay",
    "she sells sea shells by the sea shore",
    "what a wonderful morning for a walk",
    "they played music until midnight",
    "bob might move the boxes tomorrow",
)  # fmt: skip


@dataclass
class Utterance:
    audio: np.ndarray  # float32 at 16 kHz
    phones: tuple[Phone, ...]
    meta: dict[str, object]


def pseudo_sentence(rng: np.random.Generator, lang: str) -> str:
    extra = _EXTRA.get(lang.split("-")[0], "")
    words = []
    for _ in range(int(rng.integers(3, 11))):
        syl = []
        for _ in range(int(rng.integers(1, 4))):
            v = str(rng.choice(_VOWELS))
            if extra and rng.random() < 0.25:
                v = str(rng.choice(list(extra)))
            syl.append(str(rng.choice(_ONSETS)) + v + str(rng.choice(_CODAS)))
        words.append("".join(syl))
        if rng.random() < 0.12:
            words[-1] += ","
    return " ".join(words).rstrip(",") + str(rng.choice([".", ".", "?", "!"]))


def english_sentence(rng: np.random.Generator) -> str:
    s = str(rng.choice(_ENGLISH))
    if rng.random() < 0.5:
        s += ", " + str(rng.choice(_ENGLISH))
    return s[0].upper() + s[1:] + "."


def _to16k(speech: Speech) -> Speech:
    if speech.sample_rate == SAMPLE_RATE:
        return speech
    return Speech(resample(speech.samples, speech.sample_rate, SAMPLE_RATE), SAMPLE_RATE, speech.phones)


def _with_pauses(rng: np.random.Generator, sentences: list[Speech]) -> Speech:
    """Leading silence, the sentences with gaps between them, trailing silence (all at 16 kHz)."""
    parts = [silence(float(rng.uniform(0.05, 0.9)), SAMPLE_RATE)]
    for i, s in enumerate(sentences):
        if i:
            parts.append(silence(float(rng.uniform(0.05, 0.8)), SAMPLE_RATE))
        parts.append(_to16k(s))
    parts.append(silence(float(rng.uniform(0.1, 0.9)), SAMPLE_RATE))
    return concat_speech([p for p in parts if len(p.samples)])


def espeak_utterance(rng: np.random.Generator, lang: str) -> Utterance | None:
    variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
    params = EspeakParams(
        rate=float(rng.uniform(0.7, 1.6)),
        pitch=int(rng.integers(20, 80)),
        pitch_range=int(rng.integers(10, 90)),
        variant=variant,
        word_gap_ms=int(rng.choice([0, 0, 0, 30, 80])),
    )
    try:
        tts = EspeakTTS(lang, params)
        texts = [
            english_sentence(rng) if lang.startswith("en") and rng.random() < 0.5 else pseudo_sentence(rng, lang)
            for _ in range(int(rng.integers(1, 3)))
        ]
        speech = _with_pauses(rng, [tts.synthesize_sentence(t) for t in texts])
    except (EspeakTTSError, TextError):
        return None
    return Utterance(speech.samples, speech.phones, {"engine": "espeak", "voice": lang, "variant": variant,
                                                        "text": " ".join(texts)})  # fmt: skip


_PIPER: dict[str, object] = {}


def piper_utterance(rng: np.random.Generator) -> Utterance | None:
    from audio.piper_tts import PiperParams, PiperTTS

    tts = _PIPER.get("joe")
    if not isinstance(tts, PiperTTS):
        tts = _PIPER["joe"] = PiperTTS(threads=1)  # loaded once, its parameters changed per utterance
    tts.params = PiperParams(rate=float(rng.uniform(0.75, 1.4)), noise_scale=float(rng.uniform(0.3, 0.9)))
    texts = [english_sentence(rng) for _ in range(int(rng.integers(1, 3)))]
    speech = _with_pauses(rng, [tts.synthesize_sentence(t) for t in texts])
    shift = float(rng.uniform(-5, 5)) if rng.random() < 0.6 else 0.0
    # another speaker from the one neural voice: pitch and formants moved, timings kept
    audio = pitch_shift(speech.samples, SAMPLE_RATE, shift) if shift else speech.samples
    meta = {"engine": "piper", "voice": "joe", "semitones": round(shift, 2), "text": " ".join(texts)}
    return Utterance(audio, speech.phones, meta)


_RECORDED: dict[str, list[str]] = {}


def recorded_voice_utterance(rng: np.random.Generator, engine: str) -> Utterance | None:
    """A voice built from recordings of real speakers: ``flite`` (diphone and statistical voices; phones from
    pocketsphinx forced alignment to the text, ~11 ms median error) or ``festival`` (diphone and HTS voices,
    exact phone timings; ``tools.festival_speech``)."""
    from audio.system_tts import FliteTTS, SystemTTSError, flite_voices
    from tools.festival_speech import FestivalError, FestivalVoice, festival_voices

    if engine not in _RECORDED:
        _RECORDED[engine] = flite_voices() if engine == "flite" else festival_voices()
    voices = _RECORDED[engine]
    if not voices:
        return None
    voice = voices[int(rng.integers(len(voices)))]
    rate = float(rng.uniform(0.8, 1.3))
    tts = FliteTTS(voice, rate=rate) if engine == "flite" else FestivalVoice(voice, stretch=1.0 / rate)
    # festival reads pseudo-words by its letter-to-sound rules, so they add to the English sentences
    texts = [english_sentence(rng) if engine == "flite" or rng.random() < 0.6 else pseudo_sentence(rng, "en")
             for _ in range(int(rng.integers(1, 3)))]  # fmt: skip
    try:
        speech = _with_pauses(rng, [tts.synthesize_sentence(t) for t in texts])
    except (SystemTTSError, FestivalError, RuntimeError):
        return None
    return Utterance(speech.samples, speech.phones, {"engine": engine, "voice": voice, "text": " ".join(texts)})


_CORPUS: list[Recording] = []


def corpus_utterance(rng: np.random.Generator) -> Utterance | None:
    """A real recording with its phone labels (``tools.recorded_corpus``), never one held out for evaluation."""
    if not _CORPUS:
        _CORPUS.extend(r for r in recordings() if not r.held_out)
    if not _CORPUS:
        return None
    rec = _CORPUS[int(rng.integers(len(_CORPUS)))]
    try:
        speech = load(rec, SAMPLE_RATE)
    except CorpusError:
        return None
    return Utterance(speech.samples, speech.phones, {"engine": "corpus", "voice": rec.corpus, "text": rec.name})


# ---- non-speech: the mouth must stay closed -------------------------------------------------------


def nonspeech_utterance(rng: np.random.Generator) -> Utterance:
    dur = float(rng.uniform(1.0, 4.0))
    n = int(dur * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    kind = str(rng.choice(["white", "pink", "brown", "sweep", "chords", "clicks", "hum"]))
    if kind == "white":
        x = rng.normal(0, 1, n)
    elif kind in ("pink", "brown"):
        spec = np.fft.rfft(rng.normal(0, 1, n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
        spec /= f ** (0.5 if kind == "pink" else 1.0)
        x = np.fft.irfft(spec, n)
    elif kind == "sweep":
        f0, f1 = rng.uniform(80, 500), rng.uniform(1000, 7000)
        if rng.random() < 0.5:
            f0, f1 = f1, f0
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur))
        x = np.sin(phase)
    elif kind == "chords":
        x = np.zeros(n)
        step = int(rng.uniform(0.15, 0.6) * SAMPLE_RATE)
        for a in range(0, n, step):
            root = 110 * 2 ** (rng.integers(0, 24) / 12)
            seg = t[a : a + step] - t[a]
            env = np.exp(-seg * rng.uniform(1, 6))
            for ratio in (1.0, 1.26, 1.5, 2.0):
                for h in range(1, 5):
                    x[a : a + step] += env * np.sin(2 * np.pi * root * ratio * h * seg) / h
    elif kind == "clicks":
        x = np.zeros(n)
        for a in rng.integers(0, n - 200, int(dur * rng.uniform(2, 10))):
            x[a : a + 200] += rng.normal(0, 1, 200) * np.exp(-np.arange(200) / 30)
    else:
        hum_hz = float(rng.choice([50.0, 60.0, 120.0]))
        x = np.asarray(sum(np.sin(2 * np.pi * hum_hz * h * t) / h for h in range(1, 6))) + 0.05 * rng.normal(0, 1, n)
    x = x / (np.abs(x).max() + 1e-9) * 10 ** (rng.uniform(-30, -3) / 20)
    return Utterance(x.astype(np.float32), (Phone(0.0, n / SAMPLE_RATE, SILENCE),), {"engine": "nonspeech",
                                                                                    "kind": kind})  # fmt: skip


# ---- augmentation -----------------------------------------------------------------------------------


def _retime(phones: tuple[Phone, ...], factor: float) -> tuple[Phone, ...]:
    return tuple(Phone(p.start_s * factor, p.end_s * factor, p.symbol, p.stress) for p in phones)


def _noise_like(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(3)
    w = rng.normal(0, 1, n)
    if kind == 0:
        return w
    spec = np.fft.rfft(w)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 30.0)
    spec /= f ** (0.5 if kind == 1 else 1.0)
    return np.fft.irfft(spec, n)


def _reverb(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * SAMPLE_RATE)
    ir = rng.normal(0, 1, n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path
    ir /= np.sqrt((ir**2).sum())
    return fftconvolve(x, ir)[: len(x)]


def _codec(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """MP3 or Opus encode + decode through PyAV (input returned unchanged if the codec is missing)."""
    import io

    import av

    codec, fmt, rate = (("libmp3lame", "mp3", 16000), ("libopus", "ogg", 48000))[int(rng.integers(2))]
    try:
        buf = io.BytesIO()
        with av.open(buf, "w", format=fmt) as out:
            st: Any = out.add_stream(codec, rate=rate)
            st.bit_rate = int(rng.choice([16000, 24000, 32000]))
            st.layout = "mono"
            y = resample(x.astype(np.float32), SAMPLE_RATE, rate)
            frame = av.AudioFrame.from_ndarray(y[None, :], format="flt", layout="mono")
            frame.sample_rate = rate
            for pkt in st.encode(frame):
                out.mux(pkt)
            for pkt in st.encode(None):
                out.mux(pkt)
        buf.seek(0)
        parts = []
        inp: Any
        with av.open(buf) as inp:
            for fr in inp.decode(audio=0):
                parts.append(fr.to_ndarray().reshape(-1, fr.samples).mean(axis=0))
                dec_rate = fr.sample_rate
        y = resample(np.concatenate(parts).astype(np.float32), dec_rate, SAMPLE_RATE)
    except (av.FFmpegError, ValueError):
        return x
    # codec delay: align by cross-correlation over the first second
    lag = _best_lag(x, y)
    y = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, np.float32), y])
    y = np.concatenate([y, np.zeros(max(0, len(x) - len(y)), np.float32)])[: len(x)]
    return y


def _best_lag(x: np.ndarray, y: np.ndarray, max_lag: int = 2000) -> int:
    n = min(len(x), len(y), SAMPLE_RATE * 2)
    if n <= max_lag * 2:
        return 0
    a, b = x[:n], y[: n + max_lag] if len(y) >= n + max_lag else np.pad(y, (0, n + max_lag - len(y)))
    scores = [float(a[: n - max_lag] @ b[k : k + n - max_lag]) for k in range(0, max_lag)]
    return int(np.argmax(scores))


def augment(rng: np.random.Generator, u: Utterance) -> Utterance:
    x = u.audio.astype(np.float64)
    phones = u.phones
    steps: list[str] = []
    if rng.random() < 0.35:  # tempo and pitch together, by resampling (timings scale with it)
        factor = float(rng.uniform(0.85, 1.18))
        x = resample(x.astype(np.float32), SAMPLE_RATE, int(round(SAMPLE_RATE * factor))).astype(np.float64)
        phones = _retime(phones, factor)
        steps.append(f"speed{1 / factor:.2f}")
    if rng.random() < 0.3:
        x = _reverb(rng, x)
        steps.append("reverb")
    if rng.random() < 0.5:
        snr = float(rng.choice([0, 5, 10, 15, 20, 30]))
        sig = np.sqrt(np.mean(x**2) + 1e-12)
        noise = _noise_like(rng, len(x))
        if rng.random() < 0.3:  # music under the speech
            noise = nonspeech_utterance(rng).audio.astype(np.float64)
            noise = np.resize(noise, len(x))
        noise *= sig / (np.sqrt(np.mean(noise**2)) + 1e-12) * 10 ** (-snr / 20)
        x = x + noise
        steps.append(f"snr{snr:g}")
    if rng.random() < 0.2:
        x = resample(resample(x.astype(np.float32), SAMPLE_RATE, 8000), 8000, SAMPLE_RATE).astype(np.float64)
        steps.append("8k")
    if rng.random() < 0.1:
        x = _codec(rng, x.astype(np.float32)).astype(np.float64)
        steps.append("codec")
    peak = np.abs(x).max() + 1e-9
    x = x / peak * 10 ** (rng.uniform(-32, -1) / 20)
    if rng.random() < 0.05:
        x = np.clip(x * 4, -1, 1)  # clipping
        steps.append("clip")
    meta = dict(u.meta, augment=steps)
    return Utterance(x.astype(np.float32), phones, meta)


# ---- writing ---------------------------------------------------------------------------------------


def _write_shard(path: Path, utts: list[Utterance]) -> None:
    audio, targets, visemes = [], [], []
    offsets, frame_offsets = [0], [0]
    for u in utts:
        n = n_frames_for(len(u.audio))
        tg, vis = mouth_targets(u.phones, n)
        audio.append(np.clip(u.audio * 32767, -32768, 32767).astype(np.int16))
        targets.append(tg.astype(np.float16))
        visemes.append(vis.astype(np.uint8))
        offsets.append(offsets[-1] + len(u.audio))
        frame_offsets.append(frame_offsets[-1] + n)
    np.savez(
        path,
        audio=np.concatenate(audio),
        offsets=np.array(offsets, np.int64),
        targets=np.concatenate(targets),
        visemes=np.concatenate(visemes),
        frame_offsets=np.array(frame_offsets, np.int64),
        outputs=np.array(OUTPUTS),
    )


def generate(
    out: Path,
    split: str,
    minutes: float,
    seed: int,
    piper_share: float,
    langs: tuple[str, ...],
    flite_share: float = 0.0,
    festival_share: float = 0.0,
    nonspeech_share: float = 0.08,
    corpus_share: float = 0.0,
) -> None:
    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, zlib_key(split)])
    total_s, shard, utts, t0 = 0.0, 0, [], time.time()
    index = (folder / "index.jsonl").open("w", encoding="utf-8")
    while total_s < minutes * 60:
        r = rng.random()
        if r < nonspeech_share:
            u: Utterance | None = nonspeech_utterance(rng)
        elif r < nonspeech_share + piper_share:
            u = piper_utterance(rng)
        elif r < nonspeech_share + piper_share + flite_share:
            u = recorded_voice_utterance(rng, "flite")
        elif r < nonspeech_share + piper_share + flite_share + festival_share:
            u = recorded_voice_utterance(rng, "festival")
        elif r < nonspeech_share + piper_share + flite_share + festival_share + corpus_share:
            u = corpus_utterance(rng)
        else:
            u = espeak_utterance(rng, langs[int(rng.integers(len(langs)))])
        if u is None:
            continue
        if rng.random() > 0.2:
            u = augment(rng, u)
        utts.append(u)
        total_s += len(u.audio) / SAMPLE_RATE
        index.write(json.dumps(dict(u.meta, shard=shard, seconds=round(len(u.audio) / SAMPLE_RATE, 3))) + "\n")
        if len(utts) == 200:
            _write_shard(folder / f"shard{shard:03d}.npz", utts)
            shard, utts = shard + 1, []
            print(f"{split}: {total_s / 60:.1f} of {minutes:g} min ({time.time() - t0:.0f} s)", flush=True)
    if utts:
        _write_shard(folder / f"shard{shard:03d}.npz", utts)
    index.close()
    print(f"{split}: {total_s / 60:.1f} min of audio, {total_s * FRAME_RATE:.0f} frames, in {time.time() - t0:.0f} s")


def zlib_key(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.lipsync_data", description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output folder (kept out of git)")
    ap.add_argument("--minutes", type=float, default=150.0, help="training audio to generate (default 150)")
    ap.add_argument("--val-minutes", type=float, default=8.0, help="validation audio, held-out voices (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--piper", type=float, default=0.35, help="share of utterances from the Piper voice")
    ap.add_argument("--flite", type=float, default=0.0, help="share from flite voices, when installed (default 0)")
    ap.add_argument("--festival", type=float, default=0.0, help="share from Festival voices (default 0)")
    ap.add_argument("--nonspeech", type=float, default=0.08, help="share of noise, tones and music (default 0.08)")
    ap.add_argument("--corpus", type=float, default=0.0,
                    help="share of real recordings with phone labels (tools.recorded_corpus; default 0)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    generate(out, "val", args.val_minutes, args.seed, 0.0, VAL_LANGS)
    generate(out, "train", args.minutes, args.seed, args.piper, TRAIN_LANGS, args.flite, args.festival, args.nonspeech,
             args.corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
