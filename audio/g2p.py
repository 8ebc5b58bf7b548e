"""Grapheme-to-phoneme conversion through espeak-ng: spelling -> ARPAbet phones with stress."""

from __future__ import annotations

import functools

from audio.phonemes import ipa_to_arpabet


@functools.lru_cache(maxsize=20_000)
def pronounce(word: str, voice: str = "en-us") -> tuple[tuple[str, int], ...]:
    """ARPAbet ``(symbol, stress)`` pairs for ``word`` as espeak-ng would say it (empty if unpronounceable).

    Digits and abbreviations are expanded the way espeak-ng reads them ("10" -> T EH N).
    """
    from audio.espeak import text_to_ipa

    phones: list[tuple[str, int]] = []
    for clause in text_to_ipa(word, voice):
        phones.extend(ipa_to_arpabet(clause))
    return tuple(phones)
