"""A live session's worker threads; the event loop only schedules, these do the CPU work and the I/O.

* ``SpeechWorker``: say requests (bounded queue) -> sentences -> Piper (shared, serialized) ->
  48 kHz segments -> ``Timeline.push_segment`` (bounded: blocks while 2 segments wait).
* ``server.render_worker.RenderWorker``: keeps the frames from the send clock to ``lead`` frames ahead
  rendered (warp -> I420), in a small store the video track reads.
* ``ChatWorker`` (sessions with a chat endpoint): streams a reply from an OpenAI-compatible endpoint
  and hands each sentence to the speech worker the moment it is complete, as a continuation of the
  same utterance, so speech starts before the reply is complete.
"""

from __future__ import annotations

import http.client
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from server.metrics import Metrics
from server.timeline import Segment, SegmentJoiner, Timeline, make_segment, trim_leading_silence
from talker.chat import ChatClient, ChatError, ChatSettings, Message, abort_response, iter_sentences
from talker.stages import TTS, Speech, TextError, TTSError, split_sentences

log = logging.getLogger("talker.server")


class LiveVoice(TTS, Protocol):
    """The project's voice (``TTS``) that can also say a sentence ahead of background work, as a live
    session needs (``server.engine.SharedTTS`` or ``PersonaVoice``)."""

    def synthesize_live(self, sentence: str) -> Speech: ...

    def stream_live(self, sentence: str) -> Iterator[Speech]: ...


@dataclass(frozen=True)
class SayRequest:
    """Text to speak. ``continues``: the next sentence of an utterance already playing (a chat reply):
    it joins the previous one without its own lead-in trimmed or a first-frame mark."""

    utterance: int
    text: str
    epoch: int
    said_at: float
    continues: bool = False
    first_piece_chars: int | None = None  # None: the worker's own


MAX_PIECE_CHARS = 160

STREAM_MARGIN_S = 0.15
"""Streamed speech must stay this far ahead of playback for the next piece to join without a pause: the
first frames that can still be scheduled (render lead, 2 frames) and some slack. (Frames in the last
0.2 s of a piece are re-rendered when the next one arrives, for the motion's look-ahead; if that is too
late a frame repeats, which is less noticeable than a pause in the voice.)"""

FIRST_WINDOW_SHARE = 0.5
"""Share of the first streamed step that is decoding (the rest is the model's front, which runs once)."""


def speech_pieces(text: str, first_chars: int) -> list[str]:
    """Split text into the pieces synthesized one at a time: sentences, and long ones at clauses.

    The first piece is at most ``first_chars`` long where punctuation allows (speech starts sooner),
    and each later one may be twice as long as the one before (up to 160 characters): a piece is
    synthesized while the previous one plays, and Piper runs at 3-10x real time here, so doubling
    leaves no gaps while keeping sentences whole where it can.
    """
    out: list[str] = []
    cap = first_chars
    for sentence in split_sentences(text):
        parts = split_sentences(sentence, max_clause_chars=cap) if len(sentence) > cap else [sentence]
        for p in parts:
            out.append(p)
            cap = min(2 * cap, MAX_PIECE_CHARS)
    return out


class _Request(Protocol):
    @property
    def epoch(self) -> int: ...


R = TypeVar("R", bound=_Request)


class _QueueWorker(threading.Thread, Generic[R]):
    """A thread that takes requests from a bounded queue one at a time, skipping those of an
    interrupted epoch; ``handle`` does the work. Shared by the speech and the chat workers."""

    def __init__(self, name: str, timeline: Timeline, maxsize: int, metrics: Metrics) -> None:
        super().__init__(name=name, daemon=True)
        self.timeline = timeline
        self.metrics = metrics
        self.requests: queue.Queue[R | None] = queue.Queue(maxsize)
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self._current: R | None = None

    def submit(self, req: R) -> None:
        """Queue a request; raises ``queue.Full`` when ``maxsize`` are waiting."""
        self.requests.put_nowait(req)

    def clear(self) -> None:
        """Drop the waiting requests."""
        while True:
            try:
                self.requests.get_nowait()
            except queue.Empty:
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.clear()
        try:
            self.requests.put_nowait(None)
        except queue.Full:  # pragma: no cover - just cleared
            pass

    @property
    def busy(self) -> bool:
        """True while a request that was not interrupted is being handled."""
        cur = self._current
        return cur is not None and cur.epoch == self.timeline.epoch

    @property
    def pending(self) -> bool:
        """True while a request is being handled (``busy``) or waiting."""
        return self.busy or not self.requests.empty()

    def run(self) -> None:
        while not self._stop_event.is_set():
            req = self.requests.get()
            if req is None:
                return
            if req.epoch != self.timeline.epoch:
                continue
            self._current = req
            try:
                self.handle(req)
            finally:
                self._current = None

    def handle(self, req: R) -> None:
        raise NotImplementedError

    def _error(self, message: str) -> None:
        """Keep the last five errors for the session status."""
        self.errors = (self.errors + [message])[-5:]


class SpeechWorker(_QueueWorker[SayRequest]):
    """Turns say requests into timeline segments, one sentence at a time."""

    def __init__(
        self,
        name: str,
        tts: LiveVoice,
        timeline: Timeline,
        fps: float,
        piece_chars: int,
        maxsize: int,
        metrics: Metrics,
    ) -> None:
        super().__init__(name, timeline, maxsize, metrics)
        self.tts = tts
        self.fps = fps
        self.piece_chars = piece_chars

    def submit_wait(self, req: SayRequest, stop: threading.Event) -> bool:
        """Queue a request, waiting while the queue is full (backpressure for chat replies); False
        when its utterance was interrupted, ``stop`` was set or the worker stopped meanwhile."""
        while req.epoch == self.timeline.epoch and not stop.is_set() and not self._stop_event.is_set():
            try:
                self.requests.put(req, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def handle(self, req: SayRequest) -> None:
        cap = MAX_PIECE_CHARS if req.continues else (req.first_piece_chars or self.piece_chars)
        try:
            for i, piece in enumerate(speech_pieces(req.text, cap)):
                if not self._speak_piece(req, i == 0 and not req.continues, piece):
                    return
        except (TTSError, TextError, ValueError) as e:
            self.metrics.tts_errors.inc()
            self._error(f"utterance {req.utterance}: {e}")
            log.warning("session speech failed for utterance %d: %s", req.utterance, e)

    def _speak_piece(self, req: SayRequest, first: bool, piece: str) -> bool:
        """Synthesize one piece and queue it; False when the utterance was interrupted."""
        if self._stop_event.is_set() or req.epoch != self.timeline.epoch:
            return False
        t0 = time.perf_counter()
        if first:
            return self._stream_piece(req, piece, t0)
        speech = self.tts.synthesize_live(piece)
        self.metrics.tts_piece.observe(time.perf_counter() - t0)
        if self._stop_event.is_set() or req.epoch != self.timeline.epoch:
            return False
        seg = make_segment(speech, self.fps, req.utterance, req.epoch, first, req.said_at)
        return self.timeline.push_segment(seg)

    def _stream_piece(self, req: SayRequest, piece: str, t0: float) -> bool:
        """The first piece of an utterance, pushed while it is decoded: the listener waits for it.
        (Later pieces are synthesized whole while the ones before them play.)

        Audio is held back while the decoder is too slow for it: each window is twice as long as the one
        before, so it is pushed only when what is decoded and not yet played, less the timeline's
        look-ahead, outlasts the estimated decoding of the next window. On idle cores the first window
        goes out at once; on overloaded ones a sentence starts later instead of pausing in the middle.
        """
        joiner = SegmentJoiner(self.fps, req.utterance, req.epoch, True, req.said_at)
        pending: list[Segment] = []
        pushed_at: float | None = None
        decoded_s = 0.0
        t_prev = t0
        for i, speech in enumerate(self.tts.stream_live(piece)):
            now = time.perf_counter()
            took, t_prev = now - t_prev, now
            if i == 0:
                self.metrics.tts_first.observe(now - t0)
                speech = trim_leading_silence(speech)
                took *= FIRST_WINDOW_SHARE  # the rest of the first step is the model's front, run once
            if self._stop_event.is_set() or req.epoch != self.timeline.epoch:
                return False
            decoded_s += speech.duration_s
            seg = joiner.add(speech)
            if seg is not None:
                pending.append(seg)
            ahead = decoded_s - (now - pushed_at if pushed_at is not None else 0.0)
            if pending and ahead - STREAM_MARGIN_S > 2.0 * took:
                pushed_at = pushed_at if pushed_at is not None else now
                for p in pending:
                    if not self._push_counting_gaps(p):
                        return False
                pending.clear()
        seg = joiner.finish()
        if seg is not None:
            pending.append(seg)
        return all(self._push_counting_gaps(p) for p in pending)

    def _push_counting_gaps(self, seg: Segment) -> bool:
        gaps = self.timeline.gaps
        ok = self.timeline.push_segment(seg)
        if self.timeline.gaps > gaps:
            self.metrics.speech_gaps.inc()
        return ok


@dataclass(frozen=True)
class ChatRequest:
    utterance: int
    text: str
    epoch: int
    said_at: float


class ChatWorker(_QueueWorker[ChatRequest]):
    """Answers chat requests through an OpenAI-compatible endpoint, one at a time, sentence by sentence.

    The HTTP stream (blocking ``urllib``) is read here, never on the event loop. Each complete sentence
    becomes a ``SayRequest`` of the same utterance, queued after the previous one (the first keeps the
    short-first-piece split; the rest continue it). ``clear`` (interrupt) drops waiting requests and
    aborts the reply being streamed: its connection is shut down, so the endpoint stops generating.
    The conversation (the last ``history_turns`` exchanges) is sent with each request.
    """

    def __init__(
        self,
        name: str,
        chat: ChatSettings,
        speech: SpeechWorker,
        timeline: Timeline,
        maxsize: int,
        history_turns: int,
        metrics: Metrics,
        first_piece_chars: int | None = None,
    ) -> None:
        """``first_piece_chars``: the speech worker's first-piece split for a reply's first sentence."""
        super().__init__(name, timeline, maxsize, metrics)
        self.chat = chat
        self.first_piece_chars = first_piece_chars
        self.speech = speech
        self.history_turns = history_turns
        self.history: list[Message] = []
        self.replies = 0
        self._cancel = threading.Event()
        self._response: Any = None
        self._response_lock = threading.Lock()

    def clear(self) -> None:
        """Drop waiting requests and abort the reply being streamed."""
        super().clear()
        if self._current is not None:
            self._cancel.set()
        with self._response_lock:
            if self._response is not None:
                abort_response(self._response)

    def handle(self, req: ChatRequest) -> None:
        self._cancel.clear()
        try:
            self._reply(req)
        finally:
            with self._response_lock:
                self._response = None

    def _opened(self, resp: Any) -> None:
        with self._response_lock:
            self._response = resp
        if self._cancelled(None):
            abort_response(resp)

    def _cancelled(self, req: ChatRequest | None) -> bool:
        return (
            self._stop_event.is_set() or self._cancel.is_set() or (req is not None and req.epoch != self.timeline.epoch)
        )

    def _watch(self, deltas: Iterator[str], req: ChatRequest) -> Iterator[str]:
        for d in deltas:
            if self._cancelled(req):
                return
            yield d

    def _reply(self, req: ChatRequest) -> None:
        client = ChatClient(self.chat)
        keep = 2 * self.history_turns
        history = self.history[-keep:] if keep else []
        deltas = client.stream(client.messages(req.text, history), on_response=self._opened)
        said: list[str] = []
        try:
            for sentence in iter_sentences(self._watch(deltas, req), eager=True):
                if self._cancelled(req):
                    break
                say = SayRequest(
                    req.utterance,
                    sentence,
                    req.epoch,
                    time.monotonic(),
                    continues=bool(said),
                    first_piece_chars=self.first_piece_chars,
                )
                if not self.speech.submit_wait(say, self._cancel):
                    break
                said.append(sentence)
            else:
                if not self._cancelled(req):
                    self.replies += 1
        except (ChatError, OSError, http.client.HTTPException, ValueError) as e:
            if not self._cancelled(req):
                self.metrics.tts_errors.inc()
                public = e.public if isinstance(e, ChatError) else "the stream from the chat endpoint broke off"
                self._error(f"chat {req.utterance}: {public}")  # (the endpoint's own words stay in the log)
                log.warning("chat reply failed for utterance %d: %s", req.utterance, e)
        finally:
            deltas.close()  # closes the connection when the reply was cut short
        if said:
            self.history += [Message("user", req.text), Message("assistant", " ".join(said))]
            if keep:
                self.history = self.history[-keep:]
