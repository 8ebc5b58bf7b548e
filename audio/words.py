"""Label a TTS engine's word spans with the words of the text, one ``Word`` per written word.

Engines do not always keep one span per written word: espeak-ng (and Piper, which phonemizes with it) may
join words ("I am" -> one phonetic word) or split one ("42" -> "forty two"). The spans and the words are
matched in order by phone count (the expected count comes from ``audio.g2p``): a span holding several words
is shared among them at phone boundaries, several spans of one word are joined.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from audio.types import SILENCE, Phone, Word

_STRIP = "\"'.,;:!?()[]{}«»“”‘’…-—"


def text_words(text: str) -> list[str]:
    """The written words of ``text`` (whitespace tokens, outer punctuation removed, empty ones dropped)."""
    out = []
    for tok in re.findall(r"\S+", text):
        t = tok.strip(_STRIP)
        if t and any(ch.isalnum() for ch in t):
            out.append(t)
    return out


def label_words(
    phones: Sequence[Phone], spans: Sequence[tuple[float, float]], text: str, voice: str = "en-us"
) -> tuple[Word, ...]:
    """Words with text for the engine's word ``spans`` (seconds), using the sounding phones inside them."""
    words = text_words(text)
    groups = [[p for p in phones if p.symbol != SILENCE and a - 1e-9 <= p.start_s < b - 1e-9] for a, b in spans]
    keep = [(span, g) for span, g in zip(spans, groups) if g]
    if not keep or not words:
        return tuple(Word(a, b, "") for a, b in spans)
    actual = [len(g) for _, g in keep]
    expected = [_expected(w, voice) for w in words]
    out: list[Word] = []
    if len(words) >= len(keep):
        for (lo, hi), (_, g) in zip(_partition(expected, actual), keep):
            out.extend(_share(g, words[lo:hi], expected[lo:hi]))
    else:
        for (lo, hi), w in zip(_partition(actual, expected), words):
            g = [p for _, grp in keep[lo:hi] for p in grp]
            out.append(Word(g[0].start_s, g[-1].end_s, w))
    return tuple(out)


def _expected(word: str, voice: str) -> int:
    try:
        from audio.g2p import pronounce

        return max(1, len(pronounce(word, voice)))
    except Exception:  # noqa: BLE001 - without espeak-ng, guess from the spelling
        return max(1, int(round(len(word) * 0.8)))


def _partition(items: list[int], targets: list[int]) -> list[tuple[int, int]]:
    """Split ``items`` into len(targets) consecutive non-empty groups whose sums best match ``targets``.

    Returns (start, end) index pairs. Requires len(items) >= len(targets).
    """
    n, m = len(items), len(targets)
    cum = np.concatenate([[0], np.cumsum(items)])
    inf = float("inf")
    cost = np.full((m + 1, n + 1), inf)
    back = np.zeros((m + 1, n + 1), dtype=int)
    cost[0, 0] = 0.0
    for j in range(1, m + 1):
        for i in range(j, n - (m - j) + 1):
            best, arg = inf, j - 1
            for k in range(j - 1, i):
                c = cost[j - 1, k] + abs(float(cum[i] - cum[k]) - targets[j - 1])
                if c < best:
                    best, arg = c, k
            cost[j, i], back[j, i] = best, arg
    bounds = []
    i = n
    for j in range(m, 0, -1):
        k = int(back[j, i])
        bounds.append((k, i))
        i = k
    return bounds[::-1]


def _share(group: list[Phone], words: list[str], expected: list[int]) -> list[Word]:
    """Split one span's phones among several words in proportion to their expected phone counts."""
    if len(words) == 1:
        return [Word(group[0].start_s, group[-1].end_s, words[0])]
    k = len(group)
    cuts = np.round(np.cumsum(expected) / sum(expected) * k).astype(int)
    out: list[Word] = []
    first = 0
    for w, cut in zip(words, cuts):
        if first >= k:
            break
        cut = max(int(cut), first + 1)
        part = group[first:cut]
        out.append(Word(part[0].start_s, part[-1].end_s, w))
        first = cut
    return out
