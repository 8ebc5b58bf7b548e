"""Forced alignment with pocketsphinx, window by window: the word and phone passes, the grammar that
accepts any prefix of the words left (for long audio), where a window is cut, and the pocketsphinx phone
names in talker's inventory. ``audio.align.Aligner`` drives it."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np

from audio.align_energy import FRAME_S, Seg
from audio.io import to_pcm16
from audio.phonemes import VOWELS
from audio.types import SILENCE, Word

ALIGN_SR = 16_000
"""Sample rate of the pocketsphinx en-us acoustic model (Hz)."""
MIN_DECODE_S = 0.1
"""Shorter audio is not given to pocketsphinx (fewer than 10 frames); loudness gives its phones."""
ARPABET = {
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
    "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
}  # fmt: skip
_fsg_names = itertools.count(1)  # unique names for the prefix grammars


class NoPath(Exception):
    """Internal: the forced alignment found no path."""


def shift_entry(entry: Any, frames: int) -> Any:
    word, start, dur, phones = entry
    return (word, start + frames, dur, [(p, s + frames, d, sc) for p, s, d, sc in phones])


def commit_point(spans: list[tuple[str, int, int]], frames: int, limit: int) -> tuple[int, int]:
    """Where to cut a prefix-aligned window: (frame, words kept).

    Cut in the middle of the last pause (a filler of >= 150 ms) that starts before ``limit``; without such a
    pause, at the end of the last word that ends before ``limit``.
    """
    best_pause: tuple[int, int] | None = None
    best_word: tuple[int, int] | None = None
    n_words = 0
    for name, start, dur in spans:
        if is_filler(name):
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


def is_filler(name: str) -> bool:
    return name.startswith("<") or name.startswith("[") or name.startswith("+")


def symbol(name: str) -> str:
    """pocketsphinx phone name -> the talker inventory (noise and silence models become SIL)."""
    s = name.upper()
    return s if s in ARPABET else SILENCE


def run_pass(dec: Any, data: bytes, what: str) -> None:
    """One utterance of ``data`` (16-bit PCM at ``ALIGN_SR``) through ``dec``; a failure is ``NoPath``."""
    # start_stream resets the noise estimate, which otherwise carries over from earlier audio and
    # makes results depend on what was decoded before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "unnecessary", says pocketsphinx 5; it is not
        dec.start_stream()
    if len(data) < 2 * int(MIN_DECODE_S * ALIGN_SR):
        raise NoPath(f"{what}: too little audio")
    dec.start_utt()
    try:
        dec.process_raw(data, full_utt=True)
    finally:
        try:
            dec.end_utt()
        except RuntimeError as e:
            raise NoPath(f"{what}: {e}") from e


def prefix_pass(dec: Any, pcm: np.ndarray, keys: list[str]) -> tuple[list[tuple[str, int, int]], int]:
    """Decode ``pcm`` with a grammar that accepts any non-empty prefix of ``keys``.

    Returns word spans (name, start_frame, n_frames) including fillers, and the number of frames.
    """
    name = f"prefix{next(_fsg_names)}"
    m = len(keys)
    final = m + 1
    trans: list[tuple[Any, ...]] = [(i, i + 1, 1.0, keys[i]) for i in range(m)]
    trans += [(i, final, 1.0) for i in range(1, m + 1)]
    try:
        fsg = dec.create_fsg(name, 0, final, trans)
        dec.add_fsg(name, fsg)
        dec.activate_search(name)
        run_pass(dec, to_pcm16(pcm), "prefix pass")
        if dec.hyp() is None:
            raise NoPath("no path through the window")
        spans = [(s.word, int(s.start_frame), int(s.end_frame) - int(s.start_frame) + 1) for s in (dec.seg() or [])]
        return spans, int(dec.n_frames())
    except (RuntimeError, ValueError) as e:
        raise NoPath(f"prefix pass: {e}") from e
    finally:
        try:
            dec.remove_search(name)
        except (RuntimeError, KeyError):
            pass


def align_words(dec: Any, pcm: np.ndarray, keys: list[str], depth: int) -> list[Any]:
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
        raise NoPath(f"transcript rejected: {e}") from e
    run_pass(dec, data, "word pass")
    if dec.hyp() is None:
        raise NoPath("no alignment path survived the search")
    spans = [(s.word, int(s.start_frame), int(s.end_frame) - int(s.start_frame) + 1) for s in (dec.seg() or [])]
    if sum(1 for w, _, _ in spans if not is_filler(w)) != len(keys):
        raise NoPath("the audio ended before the transcript did")
    try:
        dec.set_alignment()
        run_pass(dec, data, "phone pass")
        al = dec.get_alignment()
        if al is None:
            raise NoPath("the phone pass produced no alignment")
        entries = []
        for w in al:
            phones = [(p.name, int(p.start), int(p.duration), float(p.score)) for p in w]
            entries.append((w.name, int(w.start), int(w.duration), phones))
        return entries
    except (NoPath, RuntimeError):
        pass
    # split in the longest pause and retry both halves
    pauses = [(d, s, i) for i, (w, s, d) in enumerate(spans) if is_filler(w) and 0 < i < len(spans) - 1]
    if depth < 4 and pauses:
        _, s, i = max(pauses)
        d = spans[i][2]
        cut = s + d // 2
        n_left = sum(1 for w, _, _ in spans[:i] if not is_filler(w))
        hop = ALIGN_SR // 100
        if 0 < n_left < len(keys):
            left = align_words(dec, pcm[: cut * hop], keys[:n_left], depth + 1)
            right = align_words(dec, pcm[cut * hop :], keys[n_left:], depth + 1)
            return left + [shift_entry(e, cut) for e in right]
    return [spread_word(dec, w, s, d) for w, s, d in spans]


def spread_word(dec: Any, word: str, start: int, dur: int) -> tuple[str, int, int, list[Any]]:
    """A word entry whose phones share the word's frames (vowels weigh twice a consonant)."""
    if is_filler(word):
        return (word, start, dur, [(SILENCE, start, dur, None)])
    pron = (dec.lookup_word(word) or "").split() or [SILENCE]
    weights = np.array([2.0 if symbol(p) in VOWELS else 1.0 for p in pron])
    edges = np.round(start + np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum() * dur).astype(int)
    phones = [(p, int(a), int(b - a), None) for p, a, b in zip(pron, edges[:-1], edges[1:])]
    return (word, start, dur, phones)


def forced_path(
    dec: Any,
    x16: np.ndarray,
    keys: list[str],
    shown: list[str],
    window_s: float,
    single_pass_s: float,
    g2p_voice: str,
) -> tuple[list[Seg], list[Word], float]:
    """Force-align the dictionary ``keys`` (shown as ``shown``) to ``x16`` (16 kHz): in one pass up to
    ``single_pass_s``, else window by window of ``window_s``. Returns the phone segments, the words and the
    mean acoustic score per frame; ``g2p_voice`` gives the words' lexical stress."""
    n = len(x16)
    win = int(window_s * ALIGN_SR)
    hop = ALIGN_SR // 100
    segs: list[Seg] = []
    words: list[Word] = []
    total_score = 0.0
    total_frames = 0
    t0 = 0  # sample where the current piece starts
    w0 = 0  # first word not yet aligned
    while w0 < len(keys):
        rest = n - t0
        if rest <= int(single_pass_s * ALIGN_SR):
            end, count = rest, len(keys) - w0
        else:
            # decode a window with a grammar accepting any prefix of the words left, keep the words
            # up to a pause well inside it; the next window starts in that pause
            expected = (len(keys) - w0) * win / rest
            k = min(len(keys) - w0, int(expected * 1.6) + 12)
            spans, frames = prefix_pass(dec, x16[t0 : t0 + win], keys[w0 : w0 + k])
            commit, count = commit_point(spans, frames, int(round((window_s - 6.0) / FRAME_S)))
            if count == 0:
                raise NoPath(f"nothing could be aligned in the window at {t0 / ALIGN_SR:.1f} s")
            end = commit * hop
        entries = align_words(dec, x16[t0 : t0 + end], keys[w0 : w0 + count], depth=0)
        offset_s = t0 / ALIGN_SR
        wi = w0
        for name, start, dur, phones in entries:
            a = offset_s + start * FRAME_S
            b = offset_s + (start + dur) * FRAME_S
            if not is_filler(name):
                words.append(Word(a, b, shown[wi]))
                stresses = word_stresses(keys[wi], [p[0] for p in phones], g2p_voice)
                wi += 1
            else:
                stresses = [0] * len(phones)
            for (sym, ps, pd, score), st in zip(phones, stresses):
                if pd <= 0:
                    continue
                sym = SILENCE if is_filler(name) else symbol(sym)
                segs.append(Seg(offset_s + ps * FRAME_S, offset_s + (ps + pd) * FRAME_S, sym, st))
                if score is not None:
                    total_score += score
                    total_frames += pd
        if wi != w0 + count:
            raise NoPath(f"aligned {wi - w0} words where {count} were expected")
        w0 += count
        t0 += end
        if t0 >= n and w0 < len(keys):
            raise NoPath(f"the audio ended with {len(keys) - w0} transcript words left")
    if total_frames == 0:
        raise NoPath("no phone could be scored")
    return segs, words, total_score / total_frames


def dictionary_keys(dec: Any, tokens: list[str], g2p_voice: str) -> tuple[list[str], list[str], list[int], list[str]]:
    """Dictionary keys for the tokens (OOV words added from G2P); drops unpronounceable tokens.

    Returns keys, display texts, kept token indices and the OOV words.
    """
    from audio.g2p import pronounce

    keys: list[str] = []
    shown: list[str] = []
    kept: list[int] = []
    oov: list[str] = []
    pending: list[tuple[str, str]] = []
    for i, tok in enumerate(tokens):
        key = tok.lower()
        if dec.lookup_word(key) is None and key not in {k for k, _ in pending}:
            phones = [s for s, _ in pronounce(key, g2p_voice) if s in ARPABET]
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


def word_stresses(key: str, phones: list[str], g2p_voice: str) -> list[int]:
    """Lexical stress for each phone of a word (vowels take espeak-ng's stress in order)."""
    from audio.g2p import pronounce

    try:
        ref = [st for s, st in pronounce(key, g2p_voice) if s in VOWELS]
    except Exception:  # noqa: BLE001 - stress is decoration; alignment must not fail on it
        ref = []
    vowels = [i for i, p in enumerate(phones) if symbol(p) in VOWELS]
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
