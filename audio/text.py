"""Text checks and sentence/clause splitting for TTS."""

from __future__ import annotations

import re
import unicodedata

MAX_TEXT_CHARS = 20_000
"""Longest text accepted in one request; longer text must be sent as several requests."""


class TextError(ValueError):
    """The text cannot be spoken (empty, too long, nothing pronounceable)."""


def clean_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Normalize unicode and whitespace; raise ``TextError`` for empty or over-long text."""
    if not isinstance(text, str):
        raise TextError(f"text must be a string, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if (ch in "\n\t" or unicodedata.category(ch)[0] != "C") else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise TextError("text is empty: give at least one word to speak")
    if len(text) > max_chars:
        raise TextError(f"text is {len(text)} characters long; the limit is {max_chars}. Split it into parts.")
    if not any(ch.isalnum() for ch in text):
        raise TextError(f"text {text[:40]!r} has no letters or digits to speak")
    tag = _MARKUP_RE.search(text)
    if tag:
        raise TextError(
            f"text contains markup ({tag.group()[:40]!r}): SSML and HTML tags are not supported and would be read "
            "aloud; send plain text (punctuation sets the pauses)"
        )
    return text


_MARKUP_RE = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>|<!--|<\?xml")

_SCRIPT_PREFIXES = {
    "CJK": "Han",
    "HIRAGANA": "Japanese kana",
    "KATAKANA": "Japanese kana",
    "HANGUL": "Hangul",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "CYRILLIC": "Cyrillic",
    "GREEK": "Greek",
    "DEVANAGARI": "Devanagari",
    "BENGALI": "Bengali",
    "TAMIL": "Tamil",
    "TELUGU": "Telugu",
    "GUJARATI": "Gujarati",
    "GURMUKHI": "Gurmukhi",
    "KANNADA": "Kannada",
    "MALAYALAM": "Malayalam",
    "THAI": "Thai",
    "GEORGIAN": "Georgian",
    "ARMENIAN": "Armenian",
    "ETHIOPIC": "Ethiopic",
    "SINHALA": "Sinhala",
    "KHMER": "Khmer",
    "MYANMAR": "Myanmar",
    "LAO": "Lao",
    "TIBETAN": "Tibetan",
}
"""Unicode name prefix of a letter -> its script, for the scripts a Latin-script voice cannot read."""

_SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "Han": ("cmn", "yue", "zh", "ja"),
    "Japanese kana": ("ja",),
    "Hangul": ("ko",),
    "Arabic": ("ar", "fa", "ur", "ps", "sd", "ug"),
    "Hebrew": ("he", "yi"),
    "Cyrillic": ("ru", "uk", "bg", "be", "sr", "mk", "kk", "ky", "tt", "ba", "cv", "mn", "tg"),
    "Greek": ("el", "grc"),
    "Devanagari": ("hi", "mr", "ne", "sa", "kok", "bpy"),
    "Bengali": ("bn", "as"),
    "Tamil": ("ta",),
    "Telugu": ("te",),
    "Gujarati": ("gu",),
    "Gurmukhi": ("pa",),
    "Kannada": ("kn",),
    "Malayalam": ("ml",),
    "Thai": ("th",),
    "Georgian": ("ka",),
    "Armenian": ("hy", "hyw"),
    "Ethiopic": ("am",),
    "Sinhala": ("si",),
    "Khmer": ("km",),
    "Myanmar": ("my",),
    "Lao": ("lo",),
    "Tibetan": ("bo",),
}
"""Script -> language codes (espeak-ng's) whose voices read it; the first is the one suggested."""


def scripts_in(text: str) -> dict[str, int]:
    """Letters per non-Latin script in ``text`` (Latin, digits and punctuation are not counted)."""
    out: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha() or ord(ch) < 0x250:
            continue
        name = unicodedata.name(ch, "")
        for prefix, script in _SCRIPT_PREFIXES.items():
            if name.startswith(prefix):
                out[script] = out.get(script, 0) + 1
                break
    return out


def check_script(text: str, language: str, voice_name: str) -> None:
    """Raise ``TextError`` when ``text`` has letters in a script the voice's language (an espeak-ng code
    such as ``en-us`` or ``cmn``) does not read: they would be spoken as character names or skipped."""
    lang = language.lower().split("-")[0].split("_")[0].split("+")[0]
    for script, count in sorted(scripts_in(text).items(), key=lambda kv: -kv[1]):
        readers = _SCRIPT_LANGUAGES.get(script, ())
        if lang in readers:
            continue
        hint = f"; choose a voice of that language, e.g. espeak:{readers[0]}" if readers else ""
        raise TextError(
            f"text has {count} {script} letter(s), which the voice {voice_name} ({language}) cannot read{hint} "
            "(talker voices lists them)"
        )


_SENTENCE_RE = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=\S)")
_CLAUSE_RE = re.compile(r"(?<=[,;:—])\s+(?=\S)")


FIRST_PIECE_CHARS = 60
"""Streaming TTS keeps its first piece about this short (~3 s of speech) so the first audio is out fast."""
_BREAK_WORDS = re.compile(r"\s(?=(?:and|but|or|so|because|which|who|where|when|while|that|then)\s)", re.IGNORECASE)


def split_first(piece: str, max_chars: int = FIRST_PIECE_CHARS) -> list[str]:
    """Split a long first piece into a short head and the rest: at the last clause mark within ``max_chars``,
    else at the first one within twice that, else before a conjunction, else (only if the piece is more than
    twice too long) at a space. Short pieces and pieces without a break point come back whole."""
    if len(piece) <= max_chars:
        return [piece]
    marks = [m.end() for m in _CLAUSE_RE.finditer(piece)]
    inside = [i for i in marks if 8 <= i <= max_chars]
    cut = inside[-1] if inside else next((i for i in marks if 8 <= i <= 2 * max_chars), None)
    if cut is None:
        words = [m.start() for m in _BREAK_WORDS.finditer(piece) if 20 <= m.start() <= max_chars]
        # a bare space only in a piece more than twice too long: a cut mid-phrase breaks the intonation
        spaces = [i for i, ch in enumerate(piece) if ch == " " and 20 <= i <= max_chars and len(piece) > 2 * max_chars]
        cut = words[-1] if words else (spaces[-1] if spaces else None)
    if cut is None:
        return [piece]
    head, tail = piece[:cut].strip(), piece[cut:].strip()
    return [head, tail] if head and tail else [piece]


def split_sentences(text: str, max_clause_chars: int = 160, *, first_max_chars: int | None = None) -> list[str]:
    """Split text into sentences; sentences longer than ``max_clause_chars`` are split at clauses.

    With ``first_max_chars`` (streaming), the first piece is kept about that short and each later piece at
    most twice as long as the one before, split where ``split_first`` finds a break: a piece is synthesized
    while the previous one plays, so at >= 2x real time the audio never runs dry.
    """
    pieces = _split_sentences(text, max_clause_chars)
    if not first_max_chars:
        return pieces
    out: list[str] = []
    queue = list(pieces)
    while queue:
        piece = queue.pop(0)
        limit = first_max_chars if not out else min(max_clause_chars, max(2 * len(out[-1]), 30))
        parts = split_first(piece, limit) if len(piece) > limit else [piece]
        out.append(parts[0])
        queue[:0] = parts[1:]
    return out


def _split_sentences(text: str, max_clause_chars: int) -> list[str]:
    pieces: list[str] = []
    for sent in _SENTENCE_RE.split(text):
        sent = sent.strip()
        if not sent:
            continue
        if len(sent) <= max_clause_chars:
            pieces.append(sent)
            continue
        buf = ""
        for clause in _CLAUSE_RE.split(sent):
            if buf and len(buf) + len(clause) + 1 > max_clause_chars:
                pieces.append(buf)
                buf = clause
            else:
                buf = f"{buf} {clause}".strip()
        if buf:
            pieces.append(buf)
    return pieces
