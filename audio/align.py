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
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from audio.io import MAX_AUDIO_S, load_audio, resample, to_pcm16
from audio.phonemes import VOWELS
from audio.types import SILENCE, Phone, Speech, Word

_T = TypeVar("_T")

ALIGN_SR = 16_000
"""Sample rate of the pocketsphinx en-us acoustic model (Hz)."""
FRAME_S = 0.01
"""pocketsphinx frame step (seconds)."""
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
MIN_DECODE_S = 0.1
"""Shorter audio is not given to pocketsphinx (fewer than 10 frames); loudness gives its phones."""
SILENCE_RMS = 10 ** (-58 / 20)
"""Audio whose loudest 25 ms frame is below -58 dBFS has no speech in it."""

_ARPABET = {
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
    "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
}  # fmt: skip
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


@dataclass
class _Seg:
    start: float  # seconds
    end: float
    sym: str
    stress: int = 0


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
        self._fsg_count = 0

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

        if _max_frame_rms(x, sample_rate) < SILENCE_RMS:
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

        x16 = _for_decoder(resample(x, sample_rate, ALIGN_SR) if sample_rate != ALIGN_SR else x)
        if tokens and method in ("auto", "forced"):
            try:
                segs, words, score, oov, why = self._guarded(lambda: self._forced_checked(x16, tokens))
                if not why:
                    sp = self._speech(x, sample_rate, segs, words, text)
                    return AlignResult(sp, "forced", score, tuple(oov), tuple(notes))
            except _NoPath as e:
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
            except _NoPath as e:
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
        """``step()`` under the lock; a decoder error drops the decoders and becomes ``_NoPath``, so the
        fallback chain goes on (a half-finished utterance would poison the next input)."""
        with self._lock:
            try:
                return step()
            except _NoPath:
                raise
            except Exception as e:  # noqa: BLE001 - a decoder error must not end the fallback chain
                self._reset()
                raise _NoPath(f"{type(e).__name__}: {e}") from e

    def _forced_checked(
        self, x16: np.ndarray, tokens: list[str]
    ) -> tuple[list[_Seg], list[Word], float, list[str], str]:
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
        for a, b in _quiet_cuts(x16, ALIGN_SR, self.window_s):
            if b - a < MIN_DECODE_S * ALIGN_SR:
                continue
            self._run(dec, to_pcm16(x16[a:b]), "word recognition")
            hyp = dec.hyp()
            if hyp is not None and hyp.hypstr:
                heard.append(hyp.hypstr)
        return " ".join(heard).strip()

    # ------------------------------------------------------------------ forced alignment
    def _mismatch(self, x16: np.ndarray, score: float, segs: list[_Seg]) -> str:
        """Why the transcript does not match (empty if it does): the forced path's score per frame, and how
        much loud audio it had to call a pause."""
        loud = _loud_in_silence(x16, ALIGN_SR, segs)
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
        except _NoPath:
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
            symbols = sorted(_ARPABET)
            for i, p in enumerate(symbols):
                dec.add_word(f"ph_{p.lower()}", p, i == len(symbols) - 1)
        ap = self._allphone()
        total, frames = 0.0, 0
        for a, b in _quiet_cuts(x16, ALIGN_SR, self.window_s):
            if b - a < MIN_DECODE_S * ALIGN_SR:
                continue
            self._run(ap, to_pcm16(x16[a:b]), "phone recognition")
            seq = [f"ph_{_symbol(s.word).lower()}" for s in (ap.seg() or []) if _symbol(s.word) != SILENCE]
            if not seq:
                continue
            for _, _, _, phones in self._align_words(dec, x16[a:b], seq, depth=0):
                for _, _, pd, sc in phones:
                    if sc is not None:
                        total += sc
                        frames += pd
        if frames == 0:
            raise _NoPath("no reference score")
        return total / frames

    def _dictionary_keys(self, tokens: list[str]) -> tuple[list[str], list[str], list[int], list[str]]:
        """Dictionary keys for the tokens (OOV words added from G2P); drops unpronounceable tokens.

        Returns keys, display texts, kept token indices and the OOV words.
        """
        from audio.g2p import pronounce

        dec = self._decoder()
        keys: list[str] = []
        shown: list[str] = []
        kept: list[int] = []
        oov: list[str] = []
        pending: list[tuple[str, str]] = []
        for i, tok in enumerate(tokens):
            key = tok.lower()
            if dec.lookup_word(key) is None and key not in {k for k, _ in pending}:
                phones = [s for s, _ in pronounce(key, self.g2p_voice) if s in _ARPABET]
                if not phones:
                    continue
                pending.append((key, " ".join(phones)))
                oov.append(tok)
            keys.append(key)
            shown.append(tok)
            kept.append(i)
        for j, (key, pron) in enumerate(pending):
            dec.add_word(key, pron, j == len(pending) - 1)
        return keys, shown, kept, oov

    def _forced(self, x16: np.ndarray, tokens: list[str]) -> tuple[list[_Seg], list[Word], float, list[str]]:
        keys, shown, _, oov = self._dictionary_keys(tokens)
        if not keys:
            raise _NoPath("no transcript word could be pronounced")
        dec = self._decoder()
        n = len(x16)
        win = int(self.window_s * ALIGN_SR)
        hop = ALIGN_SR // 100
        segs: list[_Seg] = []
        words: list[Word] = []
        total_score = 0.0
        total_frames = 0
        t0 = 0  # sample where the current piece starts
        w0 = 0  # first word not yet aligned
        while w0 < len(keys):
            rest = n - t0
            if rest <= int(self.single_pass_s * ALIGN_SR):
                end, count = rest, len(keys) - w0
            else:
                # decode a window with a grammar accepting any prefix of the words left, keep the words
                # up to a pause well inside it; the next window starts in that pause
                expected = (len(keys) - w0) * win / rest
                k = min(len(keys) - w0, int(expected * 1.6) + 12)
                spans, frames = self._prefix_pass(dec, x16[t0 : t0 + win], keys[w0 : w0 + k])
                commit, count = _commit_point(spans, frames, int(round((self.window_s - 6.0) / FRAME_S)))
                if count == 0:
                    raise _NoPath(f"nothing could be aligned in the window at {t0 / ALIGN_SR:.1f} s")
                end = commit * hop
            entries = self._align_words(dec, x16[t0 : t0 + end], keys[w0 : w0 + count], depth=0)
            offset_s = t0 / ALIGN_SR
            wi = w0
            for name, start, dur, phones in entries:
                a = offset_s + start * FRAME_S
                b = offset_s + (start + dur) * FRAME_S
                if not _is_filler(name):
                    words.append(Word(a, b, shown[wi]))
                    stresses = self._stresses(keys[wi], [p[0] for p in phones])
                    wi += 1
                else:
                    stresses = [0] * len(phones)
                for (sym, ps, pd, score), st in zip(phones, stresses):
                    if pd <= 0:
                        continue
                    sym = SILENCE if _is_filler(name) else _symbol(sym)
                    segs.append(_Seg(offset_s + ps * FRAME_S, offset_s + (ps + pd) * FRAME_S, sym, st))
                    if score is not None:
                        total_score += score
                        total_frames += pd
            if wi != w0 + count:
                raise _NoPath(f"aligned {wi - w0} words where {count} were expected")
            w0 += count
            t0 += end
            if t0 >= n and w0 < len(keys):
                raise _NoPath(f"the audio ended with {len(keys) - w0} transcript words left")
        if total_frames == 0:
            raise _NoPath("no phone could be scored")
        return segs, words, total_score / total_frames, oov

    def _run(self, dec: Any, data: bytes, what: str) -> None:
        # start_stream resets the noise estimate, which otherwise carries over from earlier audio and
        # makes results depend on what was decoded before
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "unnecessary", says pocketsphinx 5; it is not
            dec.start_stream()
        if len(data) < 2 * int(MIN_DECODE_S * ALIGN_SR):
            raise _NoPath(f"{what}: too little audio")
        dec.start_utt()
        try:
            dec.process_raw(data, full_utt=True)
        finally:
            try:
                dec.end_utt()
            except RuntimeError as e:
                raise _NoPath(f"{what}: {e}") from e

    def _prefix_pass(self, dec: Any, pcm: np.ndarray, keys: list[str]) -> tuple[list[tuple[str, int, int]], int]:
        """Decode ``pcm`` with a grammar that accepts any non-empty prefix of ``keys``.

        Returns word spans (name, start_frame, n_frames) including fillers, and the number of frames.
        """
        self._fsg_count += 1
        name = f"prefix{self._fsg_count}"
        m = len(keys)
        final = m + 1
        trans: list[tuple[Any, ...]] = [(i, i + 1, 1.0, keys[i]) for i in range(m)]
        trans += [(i, final, 1.0) for i in range(1, m + 1)]
        try:
            fsg = dec.create_fsg(name, 0, final, trans)
            dec.add_fsg(name, fsg)
            dec.activate_search(name)
            self._run(dec, to_pcm16(pcm), "prefix pass")
            if dec.hyp() is None:
                raise _NoPath("no path through the window")
            spans = [(s.word, int(s.start_frame), int(s.end_frame) - int(s.start_frame) + 1) for s in (dec.seg() or [])]
            return spans, int(dec.n_frames())
        except (RuntimeError, ValueError) as e:
            raise _NoPath(f"prefix pass: {e}") from e
        finally:
            try:
                dec.remove_search(name)
            except (RuntimeError, KeyError):
                pass

    def _align_words(self, dec: Any, pcm: np.ndarray, keys: list[str], depth: int) -> list[Any]:
        """Align ``keys`` to ``pcm``: word pass, then phone pass.

        Returns entries (word, start_frame, n_frames, phones), phones being (symbol, start_frame, n_frames,
        score or None). When the phone pass fails (pocketsphinx's state aligner loses its path on some
        long pauses), the piece is split in its longest pause and each half aligned again; as a last
        resort phones are spread over their word's span (score None).
        """
        data = to_pcm16(pcm)
        try:
            dec.set_align_text(" ".join(keys))
        except RuntimeError as e:
            raise _NoPath(f"transcript rejected: {e}") from e
        self._run(dec, data, "word pass")
        if dec.hyp() is None:
            raise _NoPath("no alignment path survived the search")
        spans = [(s.word, int(s.start_frame), int(s.end_frame) - int(s.start_frame) + 1) for s in (dec.seg() or [])]
        if sum(1 for w, _, _ in spans if not _is_filler(w)) != len(keys):
            raise _NoPath("the audio ended before the transcript did")
        try:
            dec.set_alignment()
            self._run(dec, data, "phone pass")
            al = dec.get_alignment()
            if al is None:
                raise _NoPath("the phone pass produced no alignment")
            entries = []
            for w in al:
                phones = [(p.name, int(p.start), int(p.duration), float(p.score)) for p in w]
                entries.append((w.name, int(w.start), int(w.duration), phones))
            return entries
        except (_NoPath, RuntimeError):
            pass
        # split in the longest pause and retry both halves
        pauses = [(d, s, i) for i, (w, s, d) in enumerate(spans) if _is_filler(w) and 0 < i < len(spans) - 1]
        if depth < 4 and pauses:
            _, s, i = max(pauses)
            d = spans[i][2]
            cut = s + d // 2
            n_left = sum(1 for w, _, _ in spans[:i] if not _is_filler(w))
            hop = ALIGN_SR // 100
            if 0 < n_left < len(keys):
                left = self._align_words(dec, pcm[: cut * hop], keys[:n_left], depth + 1)
                right = self._align_words(dec, pcm[cut * hop :], keys[n_left:], depth + 1)
                return left + [_shift_entry(e, cut) for e in right]
        return [self._spread(dec, w, s, d) for w, s, d in spans]

    def _spread(self, dec: Any, word: str, start: int, dur: int) -> tuple[str, int, int, list[Any]]:
        """A word entry whose phones share the word's frames (vowels weigh twice a consonant)."""
        if _is_filler(word):
            return (word, start, dur, [(SILENCE, start, dur, None)])
        pron = (dec.lookup_word(word) or "").split() or [SILENCE]
        weights = np.array([2.0 if _symbol(p) in VOWELS else 1.0 for p in pron])
        edges = np.round(start + np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum() * dur).astype(int)
        phones = [(p, int(a), int(b - a), None) for p, a, b in zip(pron, edges[:-1], edges[1:])]
        return (word, start, dur, phones)

    def _stresses(self, key: str, phones: list[str]) -> list[int]:
        """Lexical stress for each phone of a word (vowels take espeak-ng's stress in order)."""
        from audio.g2p import pronounce

        try:
            ref = [st for s, st in pronounce(key, self.g2p_voice) if s in VOWELS]
        except Exception:  # noqa: BLE001 - stress is decoration; alignment must not fail on it
            ref = []
        vowels = [i for i, p in enumerate(phones) if _symbol(p) in VOWELS]
        out = [0] * len(phones)
        if not vowels:
            return out
        if len(ref) == len(vowels):
            for i, st in zip(vowels, ref):
                out[i] = st
        elif 1 in ref:
            j = min(int(round(ref.index(1) * len(vowels) / max(len(ref), 1))), len(vowels) - 1)
            out[vowels[j]] = 1
        return out

    # ------------------------------------------------------------------ phoneme recognition
    def _phonetic(self, x16: np.ndarray) -> list[_Seg]:
        dec = self._allphone()
        segs: list[_Seg] = []
        for a, b in _quiet_cuts(x16, ALIGN_SR, self.window_s):
            if b - a < MIN_DECODE_S * ALIGN_SR:
                continue  # a sliver at the end: left as a pause
            self._run(dec, to_pcm16(x16[a:b]), "phone recognition")
            off = a / ALIGN_SR
            for s in dec.seg() or []:
                start, end = int(s.start_frame), int(s.end_frame) + 1
                segs.append(_Seg(off + start * FRAME_S, off + end * FRAME_S, _symbol(s.word)))
        if not segs:
            raise RuntimeError("allphone search returned no phones")
        return segs

    # ------------------------------------------------------------------ assembly
    def _speech(self, x: np.ndarray, sr: int, segs: list[_Seg], words: list[Word], text: str) -> Speech:
        dur = len(x) / float(sr)
        off = self.boundary_offset_s
        phones = _contiguous(segs, dur, off)
        ws = tuple(
            Word(_clamp(w.start_s + off, 0.0, dur), _clamp(w.end_s + off, 0.0, dur), w.text)
            for w in words
            if w.end_s > w.start_s
        )
        return Speech(x.astype(np.float32, copy=False), int(sr), phones, ws, text)


class _NoPath(Exception):
    """Internal: the forced alignment found no path."""


def _shift_entry(entry: Any, frames: int) -> Any:
    word, start, dur, phones = entry
    return (word, start + frames, dur, [(p, s + frames, d, sc) for p, s, d, sc in phones])


def _commit_point(spans: list[tuple[str, int, int]], frames: int, limit: int) -> tuple[int, int]:
    """Where to cut a prefix-aligned window: (frame, words kept).

    Cut in the middle of the last pause (a filler of >= 150 ms) that starts before ``limit``; without such a
    pause, at the end of the last word that ends before ``limit``.
    """
    best_pause: tuple[int, int] | None = None
    best_word: tuple[int, int] | None = None
    n_words = 0
    for name, start, dur in spans:
        if _is_filler(name):
            if dur >= 15 and start < limit and n_words > 0:
                best_pause = (start + min(dur // 2, 25), n_words)
            continue
        n_words += 1
        if start + dur <= limit:
            best_word = (start + dur, n_words)
    if best_pause and (best_word is None or best_pause[1] >= best_word[1] - 8):
        return best_pause
    if best_word:
        return best_word
    return frames, n_words


def _is_filler(name: str) -> bool:
    return name.startswith("<") or name.startswith("[") or name.startswith("+")


def _symbol(name: str) -> str:
    """pocketsphinx phone name -> the talker inventory (noise and silence models become SIL)."""
    s = name.upper()
    return s if s in _ARPABET else SILENCE


def _clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def _contiguous(segs: list[_Seg], dur: float, offset: float) -> tuple[Phone, ...]:
    """Sort, shift, clip to [0, dur], fill gaps with SIL, merge neighbouring SILs."""
    out: list[_Seg] = []
    t = 0.0
    for s in sorted(segs, key=lambda s: s.start):
        a = _clamp(s.start + offset if s.start > 0 else 0.0, 0.0, dur)
        b = _clamp(s.end + offset, 0.0, dur)
        a = max(a, t)
        if b - a < 1e-6:
            continue
        if a > t + 1e-6:
            out.append(_Seg(t, a, SILENCE))
        out.append(_Seg(a, b, s.sym, s.stress))
        t = b
    if dur - t > 1e-6:
        if out and dur - t < 0.0125:
            out[-1].end = dur  # the last partial frame
        else:
            out.append(_Seg(t, dur, SILENCE))
    if not out:
        out.append(_Seg(0.0, dur, SILENCE))
    merged: list[_Seg] = []
    for s in out:
        if merged and s.sym == SILENCE and merged[-1].sym == SILENCE:
            merged[-1].end = s.end
        else:
            merged.append(s)
    merged[-1].end = dur
    return tuple(Phone(s.start, s.end, s.sym, s.stress) for s in merged)


def _frame_rms(x: np.ndarray, sr: int, hop_s: float = 0.01, span: int = 3) -> np.ndarray:
    """RMS over ``span`` x ``hop_s`` windows every ``hop_s`` seconds, shape (max(1, len(x) // hop),).

    Computed block-wise so a long recording needs only a few MB beyond its samples.
    """
    hop = max(1, int(sr * hop_s))
    nb = len(x) // hop
    if nb == 0:
        return np.array([float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))]) if len(x) else np.zeros(1)
    energy = np.empty(nb)
    step = 8192
    for i in range(0, nb, step):
        j = min(nb, i + step)
        blk = x[i * hop : j * hop].reshape(j - i, hop).astype(np.float64)
        energy[i:j] = np.einsum("ij,ij->i", blk, blk)
    energy = np.convolve(energy, np.ones(span), mode="same") / (span * hop)
    return np.sqrt(np.maximum(energy, 0.0))


def _loud_in_silence(x: np.ndarray, sr: int, segs: list[_Seg]) -> float:
    """Fraction of loud 10 ms frames (upper half of the level range) that lie inside SIL segments."""
    db = 20 * np.log10(_frame_rms(x, sr) + 1e-9)
    lo, hi = float(np.percentile(db, 10)), float(np.percentile(db, 98))
    loud = db > max(lo + 0.5 * (hi - lo), hi - 30.0)
    sil = np.zeros(len(db), bool)
    for sg in segs:
        if sg.sym == SILENCE:
            sil[int(sg.start / FRAME_S) : int(sg.end / FRAME_S)] = True
    return float((loud & sil).sum()) / max(1, int(loud.sum()))


def _max_frame_rms(x: np.ndarray, sr: int) -> float:
    return float(_frame_rms(x, sr).max())


def _for_decoder(x: np.ndarray) -> np.ndarray:
    """Lift very quiet recordings so 16-bit quantisation does not eat them (CMN removes the gain anyway)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if 0.0 < peak < 0.25:
        return (x * (0.5 / peak)).astype(np.float32)
    return x.astype(np.float32, copy=False)


def _quiet_cuts(x: np.ndarray, sr: int, window_s: float) -> list[tuple[int, int]]:
    """Split ``x`` into pieces of at most ``window_s``, cutting at the quietest 10 ms in each piece's last third."""
    n = len(x)
    win = int(window_s * sr)
    if n <= win:
        return [(0, n)]
    rms = _frame_rms(x, sr)
    hop = int(sr * 0.01)
    cuts = [(0, 0)]
    a = 0
    while n - a > win:
        lo = (a + 2 * win // 3) // hop
        hi = min((a + win) // hop, len(rms))
        k = lo + int(np.argmin(rms[lo:hi])) if hi > lo else (a + win) // hop
        b = max(a + hop, k * hop)
        cuts.append((a, b))
        a = b
    cuts.append((a, n))
    return cuts[1:]


def energy_phones(x: np.ndarray, sr: int) -> list[_Seg]:
    """Syllable-like phones from loudness alone (no recogniser): SIL in pauses, a vowel (AA loud, AH
    softer) around each loudness peak, S where the sound is noisy (high zero-crossing rate), N in dips."""
    hop_s = 0.01
    rms = _frame_rms(x, sr, hop_s)
    db = 20 * np.log10(rms + 1e-9)
    floor = float(np.percentile(db, 10))
    peak = float(np.percentile(db, 98))
    thr = max(floor + 0.35 * (peak - floor), peak - 35.0)
    hop = int(sr * hop_s)
    win = max(hop, int(sr * 0.025))
    n = len(db)
    zcr = np.zeros(n)
    for k in range(n):
        seg = x[k * hop : k * hop + win]
        if len(seg) > 1:
            zcr[k] = float(np.mean(np.abs(np.diff(np.signbit(seg).astype(np.int8)))))
    # smooth the level over ~50 ms so syllables, not pitch periods, make the peaks
    kern = np.hanning(7)
    sm = np.convolve(db, kern / kern.sum(), mode="same")
    labels: list[str] = []
    for k in range(n):
        if sm[k] < thr:
            labels.append(SILENCE)
        elif zcr[k] > 0.25 and sm[k] < peak - 6:
            labels.append("S")
        else:
            left = sm[max(0, k - 8) : k + 1].min()
            right = sm[k : k + 9].min()
            prominence = sm[k] - max(left, right)
            if prominence < 2.0 and sm[k] < peak - 12:
                labels.append("N")
            else:
                labels.append("AA" if sm[k] > peak - 6 else "AH")
    segs: list[_Seg] = []
    for k, lab in enumerate(labels):
        t = k * hop_s
        if segs and segs[-1].sym == lab:
            segs[-1].end = t + hop_s
        else:
            segs.append(_Seg(t, t + hop_s, lab, 1 if lab == "AA" else 0))
    # phones shorter than 30 ms join a neighbour (energy does not resolve them), then equal neighbours merge
    out: list[_Seg] = []
    for sg in segs:
        if out and (sg.end - sg.start < 0.03 or out[-1].end - out[-1].start < 0.03 and len(out) == 1):
            if out[-1].end - out[-1].start < 0.03 and len(out) == 1:
                out[-1] = _Seg(out[-1].start, sg.end, sg.sym, sg.stress)
            else:
                out[-1].end = sg.end
        elif out and out[-1].sym == sg.sym:
            out[-1].end = sg.end
        else:
            out.append(sg)
    return out


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
