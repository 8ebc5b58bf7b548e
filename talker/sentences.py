"""A streamed reply made into speech: text deltas cut into sentences the moment each ends
(``SentenceSplitter``, ``iter_sentences``), and each sentence synthesized as soon as it is complete
(``speak_reply``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from audio.types import TTS, SpeechChunk, silence

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr vs capt lt col gen sgt mt fig approx e.g i.e a.m p.m u.s".split()
)
_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
_CLAUSE_RE = re.compile(r"[,;:—–](?=\s)")


class SentenceSplitter:
    """Incremental sentence splitter for streamed text.

    ``feed(delta)`` returns the sentences completed by that delta; ``flush()`` the rest at the end. A
    sentence ends at ``. ! ? …`` (with closing quotes or brackets) once whitespace follows, or at a line
    break. Abbreviations (Mr., Dr., e.g.), initials (J. R. R.) and list numbers (1.) do not end one.
    A sentence longer than ``max_chars`` with no end in sight is cut at its last clause mark (, ; : —),
    so speech never waits on a run-on reply.

    ``eager``: a delta that ends in ``!`` or ``?`` ends the sentence at once, without waiting for the
    next token's whitespace (one token interval sooner; live sessions). A ``.`` still waits: it may be
    an abbreviation or a decimal point. A stray ``!`` or closing quote that follows in the next delta
    has no letters and is dropped.
    """

    def __init__(self, max_chars: int = 200, eager: bool = False) -> None:
        self.max_chars = max_chars
        self.eager = eager
        self._buf = ""
        self._scan = 0

    def feed(self, delta: str) -> list[str]:
        self._buf += delta
        out: list[str] = []
        while True:
            cut = self._find_end()
            if cut is None:
                cut = self._find_clause()
            if cut is None:
                break
            piece, self._buf = self._buf[:cut], self._buf[cut:]
            self._scan = 0
            if any(c.isalnum() for c in piece):
                out.append(piece.strip())
        return out

    def flush(self) -> list[str]:
        piece, self._buf, self._scan = self._buf, "", 0
        return [piece.strip()] if any(c.isalnum() for c in piece) else []

    def _find_end(self) -> int | None:
        for m in _END_RE.finditer(self._buf, self._scan):
            end = m.end()
            if m.group() != "\n" and m.group()[0] == "." and not self._ends_sentence(m.start()):
                continue
            self._scan = 0
            return end
        if self.eager and self._buf.endswith(("!", "?")) and any(c.isalnum() for c in self._buf):
            self._scan = 0
            return len(self._buf)
        # nothing yet: rescan only the tail next time (a boundary needs the char after it)
        self._scan = max(0, len(self._buf) - 8)
        return None

    def _ends_sentence(self, dot: int) -> bool:
        words = self._buf[:dot].split()
        if not words:
            return False
        last = words[-1].lower().lstrip("\"'“‘([")
        if last in _ABBREVIATIONS:
            return False
        if len(last) == 1 and last.isalpha() and last != "i":  # an initial
            return False
        if last.isdigit() and len(words) == 1:  # "1." opening a list item
            return False
        return True

    def _find_clause(self) -> int | None:
        if len(self._buf) <= self.max_chars:
            return None
        marks = list(_CLAUSE_RE.finditer(self._buf, 0, self.max_chars + 1))
        if marks:
            return marks[-1].end()
        if len(self._buf) > 2 * self.max_chars:
            space = self._buf.rfind(" ", 0, 2 * self.max_chars)
            return space if space > 0 else 2 * self.max_chars
        return None


_MD_LINK_RE = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_MARK_RE = re.compile(r"(\*\*|__|[*`#]|^\s*[-+]\s+|^\s*\d+[.)]\s+)", re.M)


def speakable(sentence: str) -> str:
    """A sentence without markdown (links keep their text; emphasis, code ticks, headings, bullets go)."""
    s = _MD_LINK_RE.sub(r"\1", sentence)
    s = _MD_MARK_RE.sub("", s)
    return " ".join(s.split())


def iter_sentences(
    deltas: Iterable[str], max_chars: int = 200, clean: bool = True, eager: bool = False
) -> Iterator[str]:
    """Complete sentences from a stream of text deltas, each as soon as it ends (``eager``: see
    ``SentenceSplitter``)."""
    splitter = SentenceSplitter(max_chars, eager)
    for delta in deltas:
        for s in splitter.feed(delta):
            s = speakable(s) if clean else s
            if any(c.isalnum() for c in s):
                yield s
    for s in splitter.flush():
        s = speakable(s) if clean else s
        if any(c.isalnum() for c in s):
            yield s


# --- speaking the reply -------------------------------------------------------------------------------


def speak_reply(deltas: Iterable[str], tts: TTS, max_chars: int = 200) -> Iterator[SpeechChunk]:
    """Speech for a streamed reply: each sentence is synthesized the moment it is complete.

    Chunks are numbered in order with ``extra["sentence"]`` set. Whether a sentence is the last one is
    known only when the stream ends, so every spoken chunk has ``is_last=False`` and a final empty
    (zero-sample) chunk with ``is_last=True`` closes the reply.
    """
    index = 0
    for n, sentence in enumerate(iter_sentences(deltas, max_chars)):
        for chunk in tts.stream(sentence):
            extra = dict(chunk.extra)
            extra["sentence"] = n
            yield SpeechChunk(chunk.speech, index, False, chunk.source_text, extra)
            index += 1
    yield SpeechChunk(silence(0.0, tts.sample_rate), index, True, "", {"end_of_reply": True})
