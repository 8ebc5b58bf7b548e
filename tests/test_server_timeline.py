"""The live session timeline on its own (no WebRTC, no TTS): scheduling, roll-back, continuity."""

from __future__ import annotations

import time

import numpy as np
import pytest

from audio.types import SILENCE, Phone, Speech
from motion.types import CHANNEL_INDEX
from server.timeline import Timeline, make_segment

FPS = 25.0
TTS_RATE = 22050
SPF = 1920  # 48 kHz samples per frame at 25 fps
AF = 960  # samples per 20 ms audio frame


def fake_speech(duration_s: float = 1.2) -> Speech:
    """A vowel-ish tone with an 'AA' timeline (silence at both ends), like a TTS sentence."""
    n = int(duration_s * TTS_RATE)
    t = np.arange(n) / TTS_RATE
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    x[: int(0.1 * TTS_RATE)] = 0
    x[-int(0.1 * TTS_RATE) :] = 0
    phones = (
        Phone(0.0, 0.1, SILENCE),
        Phone(0.1, 0.4, "M"),
        Phone(0.4, duration_s - 0.1, "AA", 1),
        Phone(duration_s - 0.1, duration_s, SILENCE),
    )
    return Speech(x, TTS_RATE, phones)


def play(tl: Timeline, frames: range) -> list[tuple[int, bool, np.ndarray]]:
    """Act as both tracks for ``frames``: take the audio and the video plan of each frame."""
    out = []
    for k in frames:
        tl.take_audio(k * SPF, AF)
        tl.take_audio(k * SPF + AF, AF)
        plan = tl.video_plan(k)
        assert plan is not None
        rendered = tl.frames_to_render(k, k + 2)
        assert rendered and rendered[0].index == k
        assert plan.values is not None
        out.append((k, plan.speaking, plan.values.copy()))
    return out


def test_idle_stream_is_continuous_and_alive() -> None:
    tl = Timeline(FPS, TTS_RATE, seed=3)
    frames = play(tl, range(0, 250))
    vals = np.stack([v for _, _, v in frames])
    assert not any(s for _, s, _ in frames)
    yaw = vals[:, CHANNEL_INDEX["headYaw"]]
    blink = vals[:, CHANNEL_INDEX["eyeBlinkLeft"]]
    assert np.ptp(yaw) > 0.2, "idle head drift"
    assert blink.max() > 0.5, "at least one blink in 10 s"
    head = vals[:, [CHANNEL_INDEX[c] for c in ("headYaw", "headPitch", "headRoll")]]
    assert np.abs(np.diff(head, axis=0)).max() < 0.3, "no head jumps between idle frames (degrees)"
    assert np.abs(vals[:, CHANNEL_INDEX["jawOpen"]]).max() < 0.05, "mouth at rest"


def test_idle_blinks_are_whole_blinks_at_a_human_rate() -> None:
    # idle motion is computed a few frames at a time: every piece must place the blinks where the others do,
    # or a blink shows up cut in pieces (a lid twitching shut for one frame, five times a second)
    tl = Timeline(FPS, TTS_RATE, seed=0)
    blink = np.stack([v for _, _, v in play(tl, range(0, 60 * int(FPS)))])[:, CHANNEL_INDEX["eyeBlinkLeft"]]
    onsets = np.flatnonzero((blink[1:] > 0) & (blink[:-1] == 0)) + 1
    assert 10 <= len(onsets) <= 30, "blinks a minute"
    assert all(blink[k : k + 5].max() > 0.9 for k in onsets), "each blink shuts the eye"
    assert np.diff(onsets).min() >= 6, "blinks 0.24 s apart at least"


def test_speech_starts_at_the_first_free_frame_and_plays_in_order() -> None:
    tl = Timeline(FPS, TTS_RATE, seed=1)
    play(tl, range(0, 30))
    seg = make_segment(fake_speech(), FPS, utterance=1, epoch=tl.epoch, first=True, said_at=time.monotonic())
    assert seg.n_frames == 30 and len(seg.audio) == 30 * SPF
    assert tl.push_segment(seg)
    frames = play(tl, range(30, 80))
    speaking = [k for k, s, _ in frames if s]
    assert speaking[0] == 31, "idle frames already handed out stay idle; speech starts right after"
    assert speaking == list(range(31, 61))
    jaw = np.array([v[CHANNEL_INDEX["jawOpen"]] for _, _, v in frames])
    assert jaw.max() > 0.3, "the mouth opens for AA"
    vals = np.stack([v for _, _, v in frames])
    head = vals[:, [CHANNEL_INDEX[c] for c in ("headYaw", "headPitch", "headRoll")]]
    step = np.abs(np.diff(head, axis=0))  # degrees per frame; step[i]: frame 30 + i -> 31 + i
    assert step.max() < 3.0, "the head moves, it never snaps"
    for seam in (0, 30):  # the steps where idle motion meets speech (frame 31) and speech meets idle (61)
        around = np.maximum(step[max(seam - 1, 0)], step[seam + 1])
        assert (step[seam] <= around + 0.2).all(), "no head jump where idle and speech motion meet"


def test_audio_is_the_segment_audio_frame_aligned() -> None:
    tl = Timeline(FPS, TTS_RATE, seed=1)
    play(tl, range(0, 10))
    seg = make_segment(fake_speech(), FPS, 1, tl.epoch, True, time.monotonic())
    tl.push_segment(seg)
    audio = np.concatenate([tl.take_audio(s, AF) for s in range(10 * SPF, 70 * SPF, AF)])
    start = 11 * SPF - 10 * SPF
    np.testing.assert_array_equal(audio[start : start + len(seg.audio)], seg.audio)
    assert not audio[:start].any() and not audio[start + len(seg.audio) :].any()


def test_interrupt_cuts_at_the_next_unsent_frame_and_fades() -> None:
    tl = Timeline(FPS, TTS_RATE, seed=1)
    play(tl, range(0, 5))
    seg = make_segment(fake_speech(2.0), FPS, 1, tl.epoch, True, time.monotonic())
    tl.push_segment(seg)
    before = play(tl, range(5, 20))
    assert all(s for k, s, _ in before if k >= 6)
    cut = tl.interrupt()
    assert cut == 20
    after = play(tl, range(20, 40))
    assert not any(s for _, s, _ in after)
    jaw = [v[CHANNEL_INDEX["jawOpen"]] for _, _, v in after]
    assert jaw[-1] < 0.05, "the mouth closes after the cut"
    assert tl.interrupt() is None, "nothing left to interrupt"
    # a stale segment (from before the interrupt) is dropped
    stale = make_segment(fake_speech(), FPS, 2, epoch=0, first=True, said_at=time.monotonic())
    assert not tl.push_segment(stale)


def test_interrupt_inside_a_frame_fades_the_rest_of_it() -> None:
    tl = Timeline(FPS, TTS_RATE, seed=1)
    play(tl, range(0, 2))
    seg = make_segment(fake_speech(2.0), FPS, 1, tl.epoch, True, time.monotonic())
    tl.push_segment(seg)
    play(tl, range(2, 12))
    tl.take_audio(12 * SPF, AF)  # half of frame 12 is out
    assert tl.interrupt() == 13
    rest = tl.take_audio(12 * SPF + AF, AF)
    ref = seg.audio[(12 - 3) * SPF + AF : (12 - 3) * SPF + 2 * AF].astype(float)
    assert np.abs(rest[-100:]).max() <= np.abs(ref[-100:]).max() * 0.25 + 1, "faded toward the cut"
    assert not tl.take_audio(13 * SPF, AF).any()


def test_queued_segments_follow_each_other_without_gaps() -> None:
    tl = Timeline(FPS, TTS_RATE, seed=1, max_waiting=2)
    play(tl, range(0, 3))
    a = make_segment(fake_speech(0.8), FPS, 1, tl.epoch, True, time.monotonic())
    b = make_segment(fake_speech(0.8), FPS, 1, tl.epoch, False, time.monotonic())
    tl.push_segment(a)
    tl.push_segment(b)
    frames = play(tl, range(3, 60))
    speaking = [k for k, s, _ in frames if s]
    assert speaking == list(range(4, 4 + a.n_frames + b.n_frames))


@pytest.mark.parametrize("fps", [24.0, 30.0])
def test_other_frame_rates_keep_audio_and_frames_aligned(fps: float) -> None:
    spf = int(48000 / fps)
    tl = Timeline(fps, TTS_RATE, seed=2)
    for k in range(40):
        tl.take_audio(k * spf, spf)
        assert tl.video_plan(k) is not None
    seg = make_segment(fake_speech(), fps, 1, tl.epoch, True, time.monotonic())
    assert len(seg.audio) == seg.n_frames * spf
    tl.push_segment(seg)
    plans = tl.frames_to_render(40, 45)
    assert [p.index for p in plans] == list(range(40, 46))


def test_speech_pieces_start_short_and_grow() -> None:
    from server.workers import speech_pieces

    text = "Hello there, how are you doing today? I hope that you are well, and that the weather is kind."
    pieces = speech_pieces(text, 30)
    assert pieces[0] == "Hello there,"
    assert " ".join(pieces) == text
    assert speech_pieces("Hi.", 30) == ["Hi."]


def test_trim_leading_silence_keeps_the_timeline_consistent() -> None:
    from server.timeline import trim_leading_silence

    sp = fake_speech(1.2)
    out = trim_leading_silence(sp, keep_s=0.01)
    assert abs(out.duration_s - (sp.duration_s - 0.09)) < 1e-3
    assert out.phones[0].symbol == SILENCE and out.phones[0].start_s == 0.0
    assert abs(out.phones[1].start_s - 0.01) < 1e-3 and out.phones[1].symbol == "M"
    assert abs(out.phones[-1].end_s - out.duration_s) < 1e-3
    assert trim_leading_silence(out, keep_s=0.05) is out, "nothing left to trim"


def test_joined_pieces_make_the_segment_of_the_whole_sentence() -> None:
    """A sentence arriving in pieces that end anywhere becomes frame-aligned segments whose audio is
    that of the whole sentence resampled at once (no seam at the cuts) and that play back to back."""
    from server.timeline import SegmentJoiner

    sp = fake_speech(1.5)
    whole = make_segment(sp, FPS, 1, 0, True, 0.0)
    joiner = SegmentJoiner(FPS, 1, 0, True, 0.0)
    cuts = [0, 5000, 5300, 17001, len(sp.samples)]
    segs = [s for a, b in zip(cuts, cuts[1:]) if (s := joiner.add(sp.slice(a, b))) is not None]
    last = joiner.finish()
    assert last is not None
    segs.append(last)
    assert [s.first for s in segs] == [True] + [False] * (len(segs) - 1)
    assert [s.joins for s in segs] == [False] + [True] * (len(segs) - 1)
    assert sum(s.n_frames for s in segs) == whole.n_frames
    audio = np.concatenate([s.audio for s in segs]).astype(int)
    assert np.abs(audio - whole.audio.astype(int)).max() <= 1
    # played through a timeline they follow each other without a gap
    tl = Timeline(FPS, TTS_RATE, seed=1, max_waiting=len(segs))
    play(tl, range(0, 3))
    for s in segs:
        tl.push_segment(s)
    frames = play(tl, range(3, 3 + whole.n_frames + 10))
    assert [k for k, speaking, _ in frames if speaking] == list(range(4, 4 + whole.n_frames))
    assert tl.gaps == 0


def test_a_piece_that_comes_after_its_sentence_played_out_is_counted_as_a_gap() -> None:
    from server.timeline import SegmentJoiner

    sp = fake_speech(1.5)
    joiner = SegmentJoiner(FPS, 1, 0, True, 0.0)
    tl = Timeline(FPS, TTS_RATE, seed=1)
    play(tl, range(0, 3))
    first = joiner.add(sp.slice(0, 9000))
    assert first is not None
    tl.push_segment(first)
    end = 4 + first.n_frames
    play(tl, range(3, end + 5))  # the first part plays out, then 5 frames of silence
    rest = joiner.finish() if (mid := joiner.add(sp.slice(9000, len(sp.samples)))) is None else mid
    tl.push_segment(rest)
    assert tl.gaps == 1 and tl.gap_frames >= 5
    frames = play(tl, range(end + 5, end + 5 + rest.n_frames + 5))
    assert any(s for _, s, _ in frames), "the rest is still spoken, after the pause"


class _SlowVoice:
    """A voice whose streamed pieces take ``delays`` seconds each to 'decode'."""

    sample_rate = TTS_RATE

    def __init__(self, durations: list[float], delays: list[float]) -> None:
        self.durations, self.delays = durations, delays

    def synthesize_live(self, sentence: str) -> Speech:
        raise AssertionError("the first piece is streamed")

    def stream_live(self, sentence: str):  # noqa: ANN201 - an iterator of Speech
        sp = fake_speech(sum(self.durations))
        a = 0
        for d, wait in zip(self.durations, self.delays):
            time.sleep(wait)
            b = a + int(d * TTS_RATE)
            yield sp.slice(a, b)
            a = b


class _RecordingTimeline(Timeline):
    def __init__(self) -> None:
        super().__init__(FPS, TTS_RATE, seed=1, max_waiting=8)
        self.pushed_at: list[float] = []

    def push_segment(self, seg) -> bool:  # noqa: ANN001
        self.pushed_at.append(time.perf_counter())
        return super().push_segment(seg)


@pytest.mark.parametrize("slow", [False, True])
def test_streamed_speech_waits_while_the_decoder_is_too_slow_for_it(slow: bool) -> None:
    """On fast cores the first window goes out as soon as it is decoded; when decoding is slower than
    the audio it yields would last, it is held until enough is decoded to play without a pause."""
    from server.metrics import Metrics
    from server.workers import SayRequest, SpeechWorker

    tl = _RecordingTimeline()
    play(tl, range(0, 3))
    voice = _SlowVoice([0.5, 1.0, 1.2], [0.6, 0.05, 0.05] if slow else [0.05, 0.05, 0.05])
    worker = SpeechWorker("test-speech", voice, tl, FPS, 30, 4, Metrics())  # type: ignore[arg-type]
    t0 = time.perf_counter()
    assert worker._stream_piece(SayRequest(1, "text", tl.epoch, time.monotonic()), "text", t0)
    first_push = tl.pushed_at[0] - t0
    if slow:
        assert first_push > 0.6 + 0.05, "held until the second window was decoded"
    else:
        assert first_push < 0.6, "pushed right after the first window"
    frames = play(tl, range(3, 3 + 80))
    speaking = [k for k, s, _ in frames if s]
    assert speaking == list(range(speaking[0], speaking[0] + len(speaking))), "no pause inside the sentence"
    assert tl.gaps == 0
