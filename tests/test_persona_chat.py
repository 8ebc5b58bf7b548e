"""Streaming chat client against a local server speaking the real SSE protocol; sentence splitting; speech."""

from __future__ import annotations

import socket
import time

import pytest

from talker.chat import (
    ChatClient,
    ChatError,
    ChatSettings,
    Message,
    SentenceSplitter,
    iter_sentences,
    parse_sse,
    speak_reply,
    speakable,
)
from tools.fakechat import FakeChatServer, chunk_event

REPLY = "Ahoy there, matey! The sea was calm at 5.30 this morning. Mr. Smith sailed with me. Fair winds to you."


def _client(srv: FakeChatServer, **kw) -> ChatClient:
    return ChatClient(ChatSettings(base_url=srv.base_url, model="captain-7b", timeout_s=5, **kw))


def test_stream_yields_the_reply_and_sends_an_openai_request(monkeypatch):
    monkeypatch.setenv("TALKER_TEST_KEY", "sk-test-123")
    with FakeChatServer(REPLY) as srv:
        client = _client(srv, api_key_env="TALKER_TEST_KEY", system_prompt="You are a sea captain.", temperature=0.5)
        deltas = list(client.stream(client.messages("Hello!", [Message("assistant", "Hi.")])))
    assert "".join(deltas) == REPLY
    assert len(deltas) == len(REPLY.split())  # one event per token
    body = srv.requests[0]
    assert body["model"] == "captain-7b" and body["stream"] is True and body["temperature"] == 0.5
    assert [m["role"] for m in body["messages"]] == ["system", "assistant", "user"]
    assert body["messages"][0]["content"] == "You are a sea captain."
    assert srv.headers[0]["Authorization"] == "Bearer sk-test-123"


def test_no_key_no_authorization_header(monkeypatch):
    monkeypatch.delenv("TALKER_TEST_KEY", raising=False)
    with FakeChatServer("Hi.") as srv:
        assert _client(srv, api_key_env="TALKER_TEST_KEY").complete("hey") == "Hi."
    assert "Authorization" not in srv.headers[0]


def test_slow_stream_gives_the_first_sentence_long_before_the_end():
    with FakeChatServer(REPLY, token_delay_s=0.04) as srv:
        t0 = time.perf_counter()
        got = []
        for s in iter_sentences(_client(srv).stream("hi")):
            got.append((time.perf_counter() - t0, s))
        total = time.perf_counter() - t0
    assert [s for _, s in got] == [
        "Ahoy there, matey!",
        "The sea was calm at 5.30 this morning.",
        "Mr. Smith sailed with me.",
        "Fair winds to you.",
    ]
    # "matey!" is token 3 of 19: the first sentence is out after ~4 delays, the reply after ~19
    assert got[0][0] < 0.45 * total
    assert total >= 18 * 0.04


def test_error_status_names_the_url_and_the_servers_message():
    with FakeChatServer(status=401, error="Incorrect API key provided") as srv:
        client = _client(srv)
        with pytest.raises(ChatError, match=r"answered 401: Incorrect API key provided") as e:
            list(client.stream("hi"))
        assert srv.base_url in str(e.value)


def test_malformed_line_is_an_error_after_the_good_part():
    events = [chunk_event("Hello", role="assistant"), "data: {this is not json\n\n", "data: [DONE]\n\n"]
    with FakeChatServer(raw_events=events) as srv:
        got = []
        with pytest.raises(ChatError, match="malformed event"):
            for d in _client(srv).stream("hi"):
                got.append(d)
    assert got == ["Hello"]


def test_comments_unknown_fields_and_bare_lines_are_ignored():
    events = [
        ": keep-alive comment\n\n",
        "retry: 3000\n\n",
        "garbage-without-colon\n\n",
        "event: message\n" + chunk_event("Fine.", role="assistant"),
        chunk_event(None, finish="stop"),
        "data: [DONE]\n\n",
    ]
    with FakeChatServer(raw_events=events) as srv:
        assert _client(srv).complete("hi") == "Fine."


def test_error_event_mid_stream():
    events = [chunk_event("Half a", role="assistant"), 'data: {"error": {"message": "model overloaded"}}\n\n']
    with FakeChatServer(raw_events=events) as srv:
        with pytest.raises(ChatError, match="model overloaded"):
            list(_client(srv).stream("hi"))


def test_stream_cut_before_done_is_an_error():
    events = [chunk_event("Once upon", role="assistant")]
    with FakeChatServer(raw_events=events) as srv:
        with pytest.raises(ChatError, match="before the reply was complete"):
            list(_client(srv).stream("hi"))


def test_finish_reason_without_done_is_complete():
    with FakeChatServer("All done.", send_done=False) as srv:
        assert _client(srv).complete("hi") == "All done."


def test_unreachable_endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ChatClient(ChatSettings(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2))
    with pytest.raises(ChatError, match="cannot reach"):
        list(client.stream("hi"))


def test_parse_sse_multiline_data_and_crlf():
    lines = ["data: line one\r\n", "data: line two\r\n", "\r\n", "event: ping\n", "data: x\n"]
    evs = list(parse_sse(lines))
    assert [e.data for e in evs] == ["line one\nline two", "x"]
    assert evs[1].event == "ping"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
        ("Pi is 3.14 or so. Yes.", ["Pi is 3.14 or so.", "Yes."]),
        (
            "Ask Dr. Who, e.g. tomorrow. Then J. R. R. Tolkien. Done",
            ["Ask Dr. Who, e.g. tomorrow.", "Then J. R. R. Tolkien.", "Done"],
        ),
        ('He said "stop!" Then left.', ['He said "stop!"', "Then left."]),
        ("Steps:\n1. Hoist the sail\n2. Weigh anchor", ["Steps:", "1. Hoist the sail", "2. Weigh anchor"]),
        ("Wait... what?! No.", ["Wait...", "what?!", "No."]),
        ("...", []),
    ],
)
def test_sentence_splitter_any_chunking(text, expected):
    whole = SentenceSplitter()
    assert whole.feed(text) + whole.flush() == expected
    by_char = SentenceSplitter()
    got = []
    for ch in text:
        got += by_char.feed(ch)
    assert got + by_char.flush() == expected


def test_sentence_is_emitted_only_once_followed_by_whitespace():
    sp = SentenceSplitter()
    assert sp.feed("It costs 3.") == []  # could be 3.50
    assert sp.feed("50 dollars. ") == ["It costs 3.50 dollars."]


def test_run_on_sentence_is_cut_at_a_clause():
    sp = SentenceSplitter(max_chars=40)
    text = "and then we sailed north, and then we sailed south, and then we sailed home at last"
    out = []
    for tok in text.split(" "):
        out += sp.feed(tok + " ")
    out += sp.flush()
    assert all(len(s) <= 45 for s in out[:-1]) and len(out) >= 2
    assert " ".join(out) == text


def test_speakable_strips_markdown():
    assert speakable("**Bold** and `code` with a [link](http://x.y).") == "Bold and code with a link."
    assert speakable("- a bullet") == "a bullet"
    assert speakable("## Heading") == "Heading"


def test_speak_reply_with_piper_starts_before_the_reply_ends():
    from audio.piper_tts import PiperTTS

    tts = PiperTTS()
    tts.synthesize_sentence("Warm up.")  # load the voice first, as a server does
    with FakeChatServer("Ahoy! The tide is turning and the wind is fair today.", token_delay_s=0.05) as srv:
        t0 = time.perf_counter()
        chunks = []
        first_at = None
        for c in speak_reply(_client(srv).stream("hi"), tts):
            if first_at is None:
                first_at = time.perf_counter() - t0
            chunks.append(c)
        total = time.perf_counter() - t0
        last_token_at = srv.sent[-1][0] - t0
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].source_text == "Ahoy!" and chunks[0].speech.duration_s > 0.2
    assert chunks[-1].is_last and len(chunks[-1].speech.samples) == 0
    assert not any(c.is_last for c in chunks[:-1])
    assert first_at is not None and first_at < last_token_at < total


def test_eager_splitter_ends_exclamations_and_questions_without_waiting() -> None:
    deltas = ["Ahoy,", " matey!", " I", " have", ". Really?", "!", ' "Wow!', '" he', " said.", " Dr.", " No", "."]
    eager = SentenceSplitter(eager=True)
    out = [s for d in deltas for s in eager.feed(d)] + eager.flush()
    assert out == ["Ahoy, matey!", "I have.", "Really?", '"Wow!', '" he said.', "Dr. No."]
    assert eager.feed("Ahoy, matey!") == ["Ahoy, matey!"], "released with the delta that ends it"
    assert SentenceSplitter().feed("Ahoy, matey!") == [], "the default waits for the next whitespace"
