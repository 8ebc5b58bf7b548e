"""Chat-to-speech latency: how soon after the first sentence leaves the chat endpoint is its speech ready?

A local scripted endpoint (``tools.fakechat``) streams a reply token by token at a model-like pace; the
real client (``talker.chat``) parses the events, the splitter cuts sentences, Piper synthesizes them
(``speak_reply``). All times are on one clock (``time.perf_counter``) in this process.

    python -m benchmarks.bench_chat [--runs 5] [--token-ms 30] [--first-token-ms 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator

from audio.types import TTS, SpeechChunk
from benchmarks.results import command_line, record
from talker.chat import ChatClient, ChatSettings, iter_sentences, speak_reply
from tools.fakechat import FakeChatServer, tokens

DEFAULT_REPLY = (
    "Ahoy, matey! I have sailed these waters for forty years, and never have I seen a calmer morning. "
    "The gulls are quiet, the tide is turning, and the old ship creaks like a friendly dog. "
    "Shall we hoist the sails and see where the wind takes us today?"
)


class _TimedTTS:
    """Records when each sentence reaches the TTS (= when the splitter released it)."""

    def __init__(self, tts: TTS) -> None:
        self.tts = tts
        self.calls: list[tuple[float, str]] = []

    @property
    def sample_rate(self) -> int:
        return self.tts.sample_rate

    def stream(self, text: str) -> Iterator[SpeechChunk]:
        self.calls.append((time.perf_counter(), text))
        return self.tts.stream(text)


def first_sentence_token(reply: str) -> int:
    """Index of the token that completes the reply's first sentence."""
    first = next(iter_sentences([reply]))
    toks = tokens(reply)
    acc = ""
    for i, t in enumerate(toks):
        acc += t
        if len(acc.strip()) >= len(first):
            return i
    return len(toks) - 1


def run_once(srv: FakeChatServer, tts: TTS, reply: str) -> dict[str, float]:
    timed = _TimedTTS(tts)
    client = ChatClient(ChatSettings(base_url=srv.base_url, model="bench", timeout_s=30))
    srv.sent.clear()
    t0 = time.perf_counter()
    first_chunk_at = None
    first_audio_s = 0.0
    for chunk in speak_reply(client.stream("Tell me about the sea."), timed):
        if first_chunk_at is None:
            first_chunk_at = time.perf_counter()
            first_audio_s = chunk.speech.duration_s
    t_end = time.perf_counter()
    assert first_chunk_at is not None
    k = first_sentence_token(reply)
    sentence_sent = srv.sent[k][0]
    split_at = timed.calls[0][0]
    # what waiting for the whole reply would give: last token + synthesizing the first sentence
    t_syn = time.perf_counter()
    next(iter(tts.stream(timed.calls[0][1])))
    syn_s = time.perf_counter() - t_syn
    return {
        "first_token": srv.sent[0][0] - t0,
        "first_sentence_sent": sentence_sent - t0,
        "first_sentence_split": split_at - t0,
        "first_chunk": first_chunk_at - t0,
        "latency": first_chunk_at - sentence_sent,
        "split_wait": split_at - sentence_sent,
        "synth": first_chunk_at - split_at,
        "reply_streamed": srv.sent[-1][0] - t0,
        "all_speech": t_end - t0,
        "non_streaming_first_chunk": srv.sent[-1][0] - t0 + syn_s,
        "first_audio": first_audio_s,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_chat", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--token-ms", type=float, default=30.0, help="delay between tokens (default 30 ms ~ 33 tok/s)")
    ap.add_argument("--first-token-ms", type=float, default=200.0, help="delay before the first token")
    ap.add_argument("--reply", default=DEFAULT_REPLY)
    ap.add_argument("--voice", default=None, help="Piper .onnx voice (default: the bundled voice)")
    ap.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.tsv")
    args = ap.parse_args(argv)

    from audio.piper_tts import PiperTTS

    t = time.perf_counter()
    tts = PiperTTS(args.voice)
    tts.synthesize_sentence("Warm up.")
    load_s = time.perf_counter() - t
    rows = []
    with FakeChatServer(
        args.reply, token_delay_s=args.token_ms / 1000, first_token_delay_s=args.first_token_ms / 1000
    ) as srv:
        for _ in range(max(1, args.runs)):
            rows.append(run_once(srv, tts, args.reply))
    n_tok = len(tokens(args.reply))
    first = next(iter_sentences([args.reply]))
    print(
        f"chat -> speech latency: {args.runs} runs, reply of {n_tok} tokens at {args.token_ms:g} ms/token "
        f"(first token after {args.first_token_ms:g} ms); Piper voice loaded + warmed in {load_s:.2f} s"
    )
    print(f"first sentence: {first!r}")
    print(f"{'measure':<52}{'median':>10}{'min':>10}{'max':>10}")
    labels = [
        ("first_token", "first token sent by the endpoint"),
        ("first_sentence_sent", "first sentence's last token sent"),
        ("first_sentence_split", "first sentence out of the splitter"),
        ("first_chunk", "first SpeechChunk synthesized"),
        ("latency", "LATENCY: sentence sent -> first SpeechChunk"),
        ("split_wait", "  of which: waiting for the next token"),
        ("synth", "  of which: Piper synthesis"),
        ("first_audio", "first chunk's audio duration"),
        ("reply_streamed", "whole reply streamed"),
        ("all_speech", "whole reply synthesized"),
        ("non_streaming_first_chunk", "first chunk if we waited for the whole reply"),
    ]
    for key, label in labels:
        vals = [r[key] for r in rows]
        print(
            f"{label:<52}{statistics.median(vals) * 1000:>8.0f}ms{min(vals) * 1000:>8.0f}ms{max(vals) * 1000:>8.0f}ms"
        )
    if not args.no_record:
        lat = [r["latency"] * 1000 for r in rows]
        figures = (
            f"sentence sent -> first SpeechChunk: median {statistics.median(lat):.0f} ms "
            f"(min {min(lat):.0f}, max {max(lat):.0f}, n={len(lat)})"
        )
        print(f"recorded in {record(command_line('benchmarks.bench_chat', argv), figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
