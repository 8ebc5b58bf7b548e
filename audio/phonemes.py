"""Map the IPA phonemes that espeak-ng (and therefore Piper) emits to ARPAbet."""

from __future__ import annotations

# Multi-codepoint IPA units first (longest match wins).
IPA_TO_ARPABET: dict[str, str] = {
    "aɪ": "AY",
    "aʊ": "AW",
    "eɪ": "EY",
    "oʊ": "OW",
    "ɔɪ": "OY",
    "əʊ": "OW",
    "tʃ": "CH",
    "dʒ": "JH",
    "ɑː": "AA",
    "ɔː": "AO",
    "iː": "IY",
    "uː": "UW",
    "ɜː": "ER",
    "ɑ": "AA",
    "ɒ": "AA",
    "æ": "AE",
    "ʌ": "AH",
    "ə": "AH",
    "ɐ": "AH",
    "ɔ": "AO",
    "ɛ": "EH",
    "ɜ": "ER",
    "ɚ": "ER",
    "ɝ": "ER",
    "ɪ": "IH",
    "ᵻ": "IH",
    "i": "IY",
    "u": "UW",
    "ʊ": "UH",
    "o": "OW",
    "e": "EH",
    "a": "AE",
    "y": "UW",
    "ø": "UH",
    "œ": "EH",
    "ɵ": "UH",
    "ɨ": "IH",
    "b": "B",
    "d": "D",
    "ð": "DH",
    "f": "F",
    "ɡ": "G",
    "g": "G",
    "h": "HH",
    "k": "K",
    "l": "L",
    "ɫ": "L",
    "m": "M",
    "n": "N",
    "ŋ": "NG",
    "p": "P",
    "ɹ": "R",
    "r": "R",
    "ɾ": "D",
    "s": "S",
    "ʃ": "SH",
    "t": "T",
    "θ": "TH",
    "v": "V",
    "w": "W",
    "j": "Y",
    "z": "Z",
    "ʒ": "ZH",
    "ʔ": "T",
    "x": "HH",
    "ç": "HH",
    "ɲ": "N",
    "ʎ": "L",
    "β": "B",
    "ɣ": "G",
    "ʁ": "R",
    "χ": "HH",
}
_MAX_LEN = max(len(k) for k in IPA_TO_ARPABET)

STRESS_MARKS = {"ˈ": 1, "ˌ": 2}
LENGTH_MARKS = {"ː", "ˑ"}
# Combining marks and tie bars that only modify the previous phone.
MODIFIERS = {"\u0329", "\u0361", "\u032f", "\u0303", "\u02de", "\u0306"}
WORD_BREAK = " "
PAUSE_MARKS = set(",.;:!?—–…") | {"\u00a1", "\u00bf"}

VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def ipa_units(tokens: list[str]) -> list[tuple[str, list[int]]]:
    """Group per-codepoint IPA tokens into units.

    Returns ``(unit, token_indices)`` pairs where unit is an ARPAbet symbol, ``"|"`` for a word
    break, ``","`` for a pause, ``"'1"``/``"'2"`` for a stress mark, ``":"`` for a length mark,
    or ``"?"`` for an unknown symbol. Token indices let callers sum per-token durations.
    """
    out: list[tuple[str, list[int]]] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok == WORD_BREAK:
            out.append(("|", [i]))
            i += 1
            continue
        if tok in PAUSE_MARKS:
            out.append((",", [i]))
            i += 1
            continue
        if tok in STRESS_MARKS:
            out.append((f"'{STRESS_MARKS[tok]}", [i]))
            i += 1
            continue
        if tok in LENGTH_MARKS or tok in MODIFIERS:
            out.append((":", [i]))
            i += 1
            continue
        matched = False
        for length in range(min(_MAX_LEN, n - i), 0, -1):
            cand = "".join(tokens[i : i + length])
            if cand in IPA_TO_ARPABET:
                out.append((IPA_TO_ARPABET[cand], list(range(i, i + length))))
                i += length
                matched = True
                break
        if not matched:
            out.append(("?", [i]))
            i += 1
    return out


def ipa_to_arpabet(ipa: str) -> list[tuple[str, int]]:
    """ARPAbet phones with stress (0 none, 1 primary, 2 secondary) for an IPA string of one or more words.

    Word breaks, pauses, length marks and symbols without an ARPAbet equivalent are dropped; a stress mark
    applies to the next vowel.
    """
    out: list[tuple[str, int]] = []
    pending = 0
    for unit, _ in ipa_units(list(ipa)):
        if unit.startswith("'"):
            pending = int(unit[1])
        elif unit in ("|", ",", ":", "?"):
            continue
        elif unit in VOWELS:
            out.append((unit, pending))
            pending = 0
        else:
            out.append((unit, 0))
    return out
