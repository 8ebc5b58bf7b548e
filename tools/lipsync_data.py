"""Training data for the learned lip-sync model: synthetic speech with exact phone timings -> mouth targets.

    python -m tools.lipsync_data OUT_DIR [--minutes 150] [--val-minutes 8] [--seed 0] [--piper 0.35]

Speech comes from espeak-ng (many languages x voice variants x rate/pitch) and the bundled Piper voice,
each reporting the exact sample where every phone starts. Text is generated per language from syllables
written in that language's letters (espeak-ng reads them by its spelling rules), plus English sentences.
Each utterance is then degraded the way real input arrives (tempo/pitch by resampling, gain, reverb,
noise at several SNRs, 8 kHz telephone band, MP3/Opus round trips) and paired with the phonetic
generator's mouth channels at 50 frames per second (``motion.lipsync.mouth_targets``). ``--festival``,
``--festival-czech``, ``--flite`` and ``--corpus`` add recorded speakers (Festival's English and Czech
voices, flite's voices, labelled real recordings from ``tools.recorded_corpus``). Clips of noise,
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
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audio.effects import pitch_shift
from audio.espeak_tts import EspeakParams, EspeakTTS, EspeakTTSError
from audio.io import resample
from audio.mel import FRAME_RATE, SAMPLE_RATE, n_frames_for
from audio.text import TextError
from audio.types import Speech, concat_speech, silence
from motion.lipsync import OUTPUTS, mouth_targets
from tools.lipsync_augment import Utterance, augment, nonspeech_utterance
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
    pocketsphinx forced alignment to the text, ~11 ms median error), ``festival`` (English diphone and HTS
    voices, exact phone timings; ``tools.festival_speech``) or ``festival-cs`` (Festival's Czech diphone
    voices, exact timings, sentences from ``tools.czech_text``)."""
    from audio.system_tts import FliteTTS, SystemTTSError, flite_voices
    from tools.czech_text import czech_sentence
    from tools.festival_speech import CZECH_VOICES, VOICES, FestivalError, FestivalVoice, festival_voices

    if engine not in _RECORDED:
        if engine == "flite":
            _RECORDED[engine] = flite_voices()
        else:
            _RECORDED[engine] = festival_voices(CZECH_VOICES if engine == "festival-cs" else VOICES)
    voices = _RECORDED[engine]
    if not voices:
        return None
    voice = voices[int(rng.integers(len(voices)))]
    # the Czech voices share one rule-based timing, so their tempo spreads wider
    rate = float(rng.uniform(0.75, 1.4) if engine == "festival-cs" else rng.uniform(0.8, 1.3))
    tts = FliteTTS(voice, rate=rate) if engine == "flite" else FestivalVoice(voice, stretch=1.0 / rate)
    n = int(rng.integers(1, 3))
    if engine == "festival-cs":
        texts = [czech_sentence(rng) for _ in range(n)]
    else:
        # festival reads pseudo-words by its letter-to-sound rules, so they add to the English sentences
        texts = [english_sentence(rng) if engine == "flite" or rng.random() < 0.6 else pseudo_sentence(rng, "en")
                 for _ in range(n)]  # fmt: skip
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
    czech_share: float = 0.0,
) -> None:
    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, zlib_key(split)])
    sources: list[tuple[float, Callable[[], Utterance | None]]] = [
        (nonspeech_share, lambda: nonspeech_utterance(rng)),
        (piper_share, lambda: piper_utterance(rng)),
        (flite_share, lambda: recorded_voice_utterance(rng, "flite")),
        (festival_share, lambda: recorded_voice_utterance(rng, "festival")),
        (corpus_share, lambda: corpus_utterance(rng)),
        (czech_share, lambda: recorded_voice_utterance(rng, "festival-cs")),
    ]
    total_s, shard, utts, t0 = 0.0, 0, [], time.time()
    index = (folder / "index.jsonl").open("w", encoding="utf-8")
    while total_s < minutes * 60:
        # one draw picks the source: each takes its share of [0, 1) in this order, espeak-ng the rest
        r, edge = rng.random(), 0.0
        u: Utterance | None = None
        for share, make in sources:
            edge += share
            if r < edge:
                u = make()
                break
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
    ap.add_argument(
        "--festival-czech",
        type=float,
        default=0.0,
        help="share from Festival's Czech voices, recorded speakers of another language (default 0)",
    )
    ap.add_argument("--nonspeech", type=float, default=0.08, help="share of noise, tones and music (default 0.08)")
    ap.add_argument(
        "--corpus",
        type=float,
        default=0.0,
        help="share of real recordings with phone labels (tools.recorded_corpus; default 0)",
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    generate(out, "val", args.val_minutes, args.seed, 0.0, VAL_LANGS)
    generate(
        out,
        "train",
        args.minutes,
        args.seed,
        args.piper,
        TRAIN_LANGS,
        args.flite,
        args.festival,
        args.nonspeech,
        args.corpus,
        args.festival_czech,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
