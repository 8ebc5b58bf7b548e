# Over 400 lines: one decision, the fallback chain (forced, recognised, phonetic, energy) and its checks.
"""Align recorded speech to a ``Speech`` timeline (phones + words) with pocketsphinx 5.

Four methods, tried in this order by ``Aligner.align``:

1. **forced** (a transcript is given): every transcript word gets a pronunciation, from CMUdict or, for
   words it lacks, from espeak-ng (``audio.g2p``); pocketsphinx aligns words, then phones (two passes).
   Audio longer than ``single_pass_s`` is aligned window by window: each window is decoded with a grammar
   that accepts any *prefix* of the remaining words, the words up to a pause well inside the window are
   kept, and the next window starts at that pause, so memory stays bounded by the window length.
   A forced path whose acoustic score is far below what the audio supports means the transcript does not
   match the audio: the result then falls back to method 3 and says so in ``notes``.
2. **recognised** (no transcript): pocketsphinx recognises the words with its en-us language model and
   dictionary, window by window, and those words are force-aligned as in 1. Wrong words still carry
   English phone sequences at the right times: on the real clips in the media folder the mouth shapes
   (phones in viseme classes, per 10 ms) agree with the transcript's alignment 97 % of the time, where
   phoneme recognition gets 74 %.
3. **phonetic** (a mismatched transcript, or no words recognised): pocketsphinx allphone phoneme
   recognition with its phone bigram model. Phones only, no words.
4. **energy** (pocketsphinx unusable): loudness and spectral shape give syllable-like phones.

Audio with no speech at all gives one ``SIL`` phone (method "silence"). Phones are ARPAbet without stress
digits plus ``SIL``, contiguous from 0 to the end of the audio; stress comes from espeak-ng's lexicon.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from audio.align_energy import (
    FRAME_S,
    Seg,
    clamp,
    contiguous_phones,
    energy_phones,
    for_decoder,
    loud_in_silence,
    max_frame_rms,
    quiet_cuts,
)
from audio.align_windows import (
    ALIGN_SR,
    ARPABET,
    MIN_DECODE_S,
    NoPath,
    align_words,
    dictionary_keys,
    forced_path,
    run_pass,
    symbol,
)
from audio.io import MAX_AUDIO_S, load_audio, resample, to_pcm16
from audio.types import SILENCE, Speech, Word

__all__ = ["ALIGN_SR", "FRAME_S", "MIN_DECODE_S", "AlignError", "AlignResult", "Aligner", "align", "align_file",
           "default_aligner", "energy_phones", "transcript_words"]  # fmt: skip

_T = TypeVar("_T")

BOUNDARY_OFFSET_S = 0.0075
"""Frame index -> time correction: a boundary between frames k-1 and k lies between their window centres
(analysis windows are 25.6 ms long, so centres are ~12.8 ms after frame starts); measured on the exact
espeak-ng and MBROLA labels in ``tools.eval_align``."""
MISMATCH_SCORE = -45.0
"""Mean forced-path acoustic score per 10 ms frame below which a transcript is judged not to match the audio.
pocketsphinx normalises senone scores per frame, so on this project's clips a matching transcript scores -6
to -18 (real speech) and -15 to -36 (synthetic voices); another clip's transcript scores -40 to -64."""
DOUBT_SCORE = -25.0
"""Between ``MISMATCH_SCORE`` and this, the forced score is compared with the score of the recognised phone
sequence (what the audio supports without a transcript): more than ``MISMATCH_MARGIN`` below it is a
mismatch."""
MISMATCH_MARGIN = 15.0
MAX_LOUD_IN_SILENCE = 0.3
"""A forced alignment that puts more than this fraction of the loud frames into pauses has left speech without
words: the transcript misses part of what is said (matching transcripts here: at most 0.10)."""
SILENCE_RMS = 10 ** (-58 / 20)
"""Audio whose loudest 25 ms frame is below -58 dBFS has no speech in it."""

_WORD_RE = re.compile(r"[\w]+(?:['’][\w]+)*", re.UNICODE)


class AlignError(RuntimeError):
    """Alignment could not produce any timeline (the message says why)."""


@dataclass(frozen=True)
class AlignResult:
    """An aligned ``Speech`` and how it was obtained.

    ``method`` is "forced", "phonetic", "energy" or "silence"; ``score`` the forced path's mean acoustic
    score per 10 ms frame (higher is better; None for other methods); ``oov`` the transcript words that
    were pronounced by espeak-ng because the dictionary lacks them; ``notes`` explain fallbacks.
    """

    speech: Speech
    method: str
    score: float | None = None
    oov: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def transcript_words(text: str) -> list[str]:
    """Words of a transcript as written, punctuation removed ("cold-hearted," -> ["cold", "hearted"])."""
    return [m.group(0).replace("’", "'") for m in _WORD_RE.finditer(text or "")]


class Aligner:
    """Reusable aligner (holds the pocketsphinx decoders; thread-safe, one alignment at a time).

    Args:
        window_s: window length for long audio (seconds); memory grows with it.
        single_pass_s: audio up to this length is aligned in one pass.
        mismatch_score, doubt_score, mismatch_margin: mismatch test, see ``MISMATCH_SCORE``.
        g2p_voice: espeak-ng voice used to pronounce words missing from the dictionary.
        boundary_offset_s: added to every pocketsphinx boundary, see ``BOUNDARY_OFFSET_S``.
    """

    def __init__(
        self,
        *,
        window_s: float = 30.0,
        single_pass_s: float = 40.0,
        mismatch_score: float = MISMATCH_SCORE,
        doubt_score: float = DOUBT_SCORE,
        mismatch_margin: float = MISMATCH_MARGIN,
        g2p_voice: str = "en-us",
        boundary_offset_s: float = BOUNDARY_OFFSET_S,
    ) -> None:
        if window_s < 5.0:
            raise ValueError(f"window_s must be at least 5 s, got {window_s}")
        self.window_s = float(window_s)
        self.single_pass_s = max(float(single_pass_s), self.window_s)
        self.mismatch_score = float(mismatch_score)
        self.doubt_score = float(doubt_score)
        self.mismatch_margin = float(mismatch_margin)
        self.g2p_voice = g2p_voice
        self.boundary_offset_s = float(boundary_offset_s)
        self._lock = threading.RLock()
        self._fa: Any = None
        self._ap: Any = None
        self._asr: Any = None

    # ------------------------------------------------------------------ public API
    def align(
        self, samples: np.ndarray, sample_rate: int, text: str | None = None, method: str = "auto"
    ) -> AlignResult:
        """Align mono ``samples`` (any rate) to ``text`` (or to the words recognised in them when ``text`` is
        None or empty).

        Args:
            method: "auto" (forced if text, else recognised, else phonetic; energy if pocketsphinx
                fails), or one of "forced", "recognised", "phonetic", "energy" to force a method
                ("forced" raises ``AlignError`` on a mismatched transcript instead of falling back,
                "recognised" when no words are recognised or they cannot be aligned).

        Returns:
            ``AlignResult`` whose ``speech`` keeps the input samples and rate.
        """
        if method not in ("auto", "forced", "recognised", "phonetic", "energy"):
            raise ValueError(f"unknown alignment method {method!r}")
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise AlignError(f"alignment needs mono samples, got shape {x.shape}")
        if sample_rate <= 0:
            raise AlignError(f"sample rate must be positive, got {sample_rate}")
        if len(x) == 0:
            raise AlignError("no audio to align (zero samples)")
        if not np.isfinite(x).all():
            x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
        duration = len(x) / float(sample_rate)
        text = text or ""
        tokens = transcript_words(text)
        notes: list[str] = []
        if text.strip() and not tokens:
            notes.append("the transcript has no words; phones were recognised instead")

        if max_frame_rms(x, sample_rate) < SILENCE_RMS:
            if tokens:
                notes.append("no speech found in the audio; the transcript was not aligned")
            return AlignResult(self._speech(x, sample_rate, [], [], text), "silence", notes=tuple(notes))

        if method == "energy":
            return AlignResult(self._speech(x, sample_rate, energy_phones(x, sample_rate), [], text), "energy")
        if duration < MIN_DECODE_S:
            why = f"the audio is too short to recognise ({duration * 1000:.0f} ms)"
            if method != "auto":
                raise AlignError(why)
            notes.append(why + "; phones estimated from loudness")
            return AlignResult(self._speech(x, sample_rate, energy_phones(x, sample_rate), [], text), "energy",
                               notes=tuple(notes))  # fmt: skip

        x16 = for_decoder(resample(x, sample_rate, ALIGN_SR) if sample_rate != ALIGN_SR else x)
        if tokens and method in ("auto", "forced"):
            try:
                segs, words, score, oov, why = self._guarded(lambda: self._forced_checked(x16, tokens))
                if not why:
                    sp = self._speech(x, sample_rate, segs, words, text)
                    return AlignResult(sp, "forced", score, tuple(oov), tuple(notes))
            except NoPath as e:
                why = f"the transcript could not be aligned to the audio ({e})"
            if method == "forced":
                raise AlignError(why)
            notes.append(why + "; phones were recognised without it")
        elif method in ("auto", "recognised"):
            heard = ""
            try:
                heard = self._guarded(lambda: self._recognise(x16))
                said = transcript_words(heard)
                why = "no words were recognised"
                if said:
                    segs, words, score, oov, why = self._guarded(lambda: self._forced_checked(x16, said))
                    if not why:
                        note = f"no transcript: the words were recognised as {heard!r}"
                        sp = self._speech(x, sample_rate, segs, words, heard)
                        return AlignResult(sp, "recognised", score, tuple(oov), tuple(notes + [note]))
            except NoPath as e:
                why = f"the recognised words {heard!r} could not be aligned ({e})"
            if method == "recognised":
                raise AlignError(why)
            notes.append(why + "; phones were recognised instead")
        try:
            with self._lock:
                try:
                    segs = self._phonetic(x16)
                except Exception:
                    self._reset()
                    raise
            return AlignResult(self._speech(x, sample_rate, segs, [], text), "phonetic", notes=tuple(notes))
        except Exception as e:  # noqa: BLE001 - pocketsphinx missing or failing: loudness still gives a result
            if method == "phonetic":
                raise AlignError(f"phoneme recognition failed: {e}") from e
            notes.append(f"phoneme recognition failed ({e}); phones estimated from loudness")
        segs = energy_phones(x, sample_rate)
        return AlignResult(self._speech(x, sample_rate, segs, [], text), "energy", notes=tuple(notes))

    def align_file(
        self, path: str | Path, text: str | None = None, method: str = "auto", max_duration_s: float = MAX_AUDIO_S
    ) -> AlignResult:
        """Load ``path`` (any format PyAV reads; ``AudioError`` if unusable) and align it."""
        samples, sr = load_audio(path, max_duration_s=max_duration_s)
        return self.align(samples, sr, text, method)

    # ------------------------------------------------------------------ decoders
    def _reset(self) -> None:
        """Drop the decoders after an error (a half-finished utterance would poison the next input)."""
        self._fa = None
        self._ap = None
        self._asr = None

    def _decoder(self) -> Any:
        if self._fa is None:
            from pocketsphinx import Decoder

            # Wide beams: synthetic or unusual voices otherwise lose the forced path (the search over a fixed
            # word sequence is small, so this costs almost nothing). No lattice best-path rescoring: its word
            # segmentation can give phones "impossible durations" that make the phone pass fail.
            self._fa = Decoder(
                samprate=ALIGN_SR,
                lm=None,
                beam=1e-100,
                wbeam=1e-80,
                pbeam=1e-100,
                bestpath=False,
                loglevel="FATAL",
            )
        return self._fa

    def _allphone(self) -> Any:
        if self._ap is None:
            from pocketsphinx import Decoder, get_model_path

            self._ap = Decoder(
                samprate=ALIGN_SR,
                lm=None,
                allphone=get_model_path("en-us/en-us-phone.lm.bin"),
                backtrace=True,
                beam=1e-20,
                pbeam=1e-20,
                lw=2.0,
                loglevel="FATAL",
            )
        return self._ap

    def _guarded(self, step: Callable[[], _T]) -> _T:
        """``step()`` under the lock; a decoder error drops the decoders and becomes ``NoPath``, so the
        fallback chain goes on (a half-finished utterance would poison the next input)."""
        with self._lock:
            try:
                return step()
            except NoPath:
                raise
            except Exception as e:  # noqa: BLE001 - a decoder error must not end the fallback chain
                self._reset()
                raise NoPath(f"{type(e).__name__}: {e}") from e

    def _forced_checked(
        self, x16: np.ndarray, tokens: list[str]
    ) -> tuple[list[Seg], list[Word], float, list[str], str]:
        """``_forced`` and why its path does not match the audio (empty when it does)."""
        segs, words, score, oov = self._forced(x16, tokens)
        return segs, words, score, oov, self._mismatch(x16, score, segs)

    def _recogniser(self) -> Any:
        if self._asr is None:
            from pocketsphinx import Decoder

            # the package's own en-us acoustic model, language model and dictionary
            self._asr = Decoder(samprate=ALIGN_SR, loglevel="FATAL")
        return self._asr

    def _recognise(self, x16: np.ndarray) -> str:
        """The words pocketsphinx hears in ``x16`` (16 kHz), window by window at quiet points."""
        dec = self._recogniser()
        heard: list[str] = []
        for a, b in quiet_cuts(x16, ALIGN_SR, self.window_s):
            if b - a < MIN_DECODE_S * ALIGN_SR:
                continue
            run_pass(dec, to_pcm16(x16[a:b]), "word recognition")
            hyp = dec.hyp()
            if hyp is not None and hyp.hypstr:
                heard.append(hyp.hypstr)
        return " ".join(heard).strip()

    # ------------------------------------------------------------------ forced alignment
    def _mismatch(self, x16: np.ndarray, score: float, segs: list[Seg]) -> str:
        """Why the transcript does not match (empty if it does): the forced path's score per frame, and how
        much loud audio it had to call a pause."""
        loud = loud_in_silence(x16, ALIGN_SR, segs)
        if loud > MAX_LOUD_IN_SILENCE:
            return f"the transcript does not cover the speech ({loud * 100:.0f}% of the loud audio falls in pauses)"
        if score >= self.doubt_score:
            return ""
        if score < self.mismatch_score:
            return (
                f"the transcript does not match the audio (acoustic score {score:.1f} per frame, "
                f"below {self.mismatch_score:.1f})"
            )
        try:
            ref = self._reference_score(x16)
        except NoPath:
            return ""
        if score < ref - self.mismatch_margin:
            return (
                f"the transcript does not match the audio (acoustic score {score:.1f} per frame, "
                f"{ref - score:.1f} below the recognised phones' {ref:.1f})"
            )
        return ""

    def _reference_score(self, x16: np.ndarray) -> float:
        """Forced score per frame of the phone sequence the recogniser hears (phones as one-phone words)."""
        dec = self._decoder()
        if dec.lookup_word("ph_aa") is None:
            symbols = sorted(ARPABET)
            for i, p in enumerate(symbols):
                dec.add_word(f"ph_{p.lower()}", p, i == len(symbols) - 1)
        ap = self._allphone()
        total, frames = 0.0, 0
        for a, b in quiet_cuts(x16, ALIGN_SR, self.window_s):
            if b - a < MIN_DECODE_S * ALIGN_SR:
                continue
            run_pass(ap, to_pcm16(x16[a:b]), "phone recognition")
            seq = [f"ph_{symbol(s.word).lower()}" for s in (ap.seg() or []) if symbol(s.word) != SILENCE]
            if not seq:
                continue
            for _, _, _, phones in align_words(dec, x16[a:b], seq, depth=0):
                for _, _, pd, sc in phones:
                    if sc is not None:
                        total += sc
                        frames += pd
        if frames == 0:
            raise NoPath("no reference score")
        return total / frames

    def _forced(self, x16: np.ndarray, tokens: list[str]) -> tuple[list[Seg], list[Word], float, list[str]]:
        keys, shown, _, oov = dictionary_keys(self._decoder(), tokens, self.g2p_voice)
        if not keys:
            raise NoPath("no transcript word could be pronounced")
        dec = self._decoder()
        segs, words, score = forced_path(dec, x16, keys, shown, self.window_s, self.single_pass_s, self.g2p_voice)
        return segs, words, score, oov

    # ------------------------------------------------------------------ phoneme recognition
    def _phonetic(self, x16: np.ndarray) -> list[Seg]:
        dec = self._allphone()
        segs: list[Seg] = []
        for a, b in quiet_cuts(x16, ALIGN_SR, self.window_s):
            if b - a < MIN_DECODE_S * ALIGN_SR:
                continue  # a sliver at the end: left as a pause
            run_pass(dec, to_pcm16(x16[a:b]), "phone recognition")
            off = a / ALIGN_SR
            for s in dec.seg() or []:
                start, end = int(s.start_frame), int(s.end_frame) + 1
                segs.append(Seg(off + start * FRAME_S, off + end * FRAME_S, symbol(s.word)))
        if not segs:
            raise RuntimeError("allphone search returned no phones")
        return segs

    # ------------------------------------------------------------------ assembly
    def _speech(self, x: np.ndarray, sr: int, segs: list[Seg], words: list[Word], text: str) -> Speech:
        dur = len(x) / float(sr)
        off = self.boundary_offset_s
        phones = contiguous_phones(segs, dur, off)
        ws = tuple(
            Word(clamp(w.start_s + off, 0.0, dur), clamp(w.end_s + off, 0.0, dur), w.text)
            for w in words
            if w.end_s > w.start_s
        )
        return Speech(x.astype(np.float32, copy=False), int(sr), phones, ws, text)


_default: Aligner | None = None
_default_lock = threading.Lock()


def default_aligner() -> Aligner:
    """A process-wide ``Aligner`` (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Aligner()
        return _default


def align(samples: np.ndarray, sample_rate: int, text: str | None = None) -> Speech:
    """Timeline for recorded speech: forced alignment with ``text``, phone recognition without it."""
    return default_aligner().align(samples, sample_rate, text).speech


def align_file(path: str | Path, text: str | None = None, max_duration_s: float = MAX_AUDIO_S) -> AlignResult:
    """Load an audio file (``AudioError`` if unusable) and align it (see ``Aligner.align``)."""
    return default_aligner().align_file(path, text, max_duration_s=max_duration_s)
