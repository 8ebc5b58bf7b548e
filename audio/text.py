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
    return text


_SENTENCE_RE = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=\S)")
_CLAUSE_RE = re.compile(r"(?<=[,;:—])\s+(?=\S)")


def split_sentences(text: str, max_clause_chars: int = 160) -> list[str]:
    """Split text into sentences; sentences longer than ``max_clause_chars`` are split at clauses."""
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
