"""A listening avatar's idle motion comes round again every ``IDLE_LOOP_S``, and live sessions show the
frames of the loop's second round from the portrait's memo instead of rendering them: the same pictures, no
render, for every session of that portrait."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import media, psnr

from motion.generator import MotionStream
from motion.idle import IDLE_LOOP_S
from motion.types import CHANNEL_INDEX
from server.frame_memo import FrameMemo, FrameSource, MemoShelf, key_of
from server.render_pool import I420Renderer
from talker.pipeline import Pipeline
from talker.stages import SILENCE, Drawn, Phone, Speech

FPS = 25.0
LOOP = int(IDLE_LOOP_S * FPS)
SR = 16000


@pytest.fixture(scope="module")
def astronaut(pipeline: Pipeline):
    return pipeline.prepare_avatar(media("faces", "astronaut_eileen_collins.png"), (256, 256))


def silence(seconds: float) -> Speech:
    n = int(seconds * SR)
    return Speech(np.zeros(n, np.float32), SR, (Phone(0.0, seconds, SILENCE),))


def speech(seconds: float) -> Speech:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    phones = tuple(Phone(i * 0.2, (i + 1) * 0.2, "AA" if i % 2 else "M") for i in range(int(seconds / 0.2)))
    return Speech(audio, SR, phones)


def stream_values(pieces: list[Speech]) -> np.ndarray:
    s = MotionStream(FPS, seed=5)
    return np.concatenate([s.push(p) for p in pieces] + [s.finish()])


def test_idle_motion_comes_round_again_after_a_loop_and_after_speech() -> None:
    idle = stream_values([silence(1.0) for _ in range(2 * int(IDLE_LOOP_S) + 2)])
    # (from the second second on: the session's very first glance comes from straight ahead)
    first, second = idle[25:LOOP], idle[LOOP + 25 : 2 * LOOP]
    assert np.abs(first - second).max() < 1e-5, "idle motion repeats one loop later"
    same = np.mean([key_of(a) == key_of(b) for a, b in zip(first, second)])
    assert same > 0.99, f"{same:.1%} of the frames one loop apart find each other in the memo"
    # within the loop it lives: blinks, glances and a swaying head
    blink = first[:, CHANNEL_INDEX["eyeBlinkLeft"]]
    onsets = np.flatnonzero((blink[1:] > 0.5) & (blink[:-1] <= 0.5))
    assert len(onsets) >= 6, f"{len(onsets)} blinks in {IDLE_LOOP_S:.0f} s"
    assert np.ptp(first[:, CHANNEL_INDEX["eyeLookX"]]) > 0.05
    assert np.ptp(first[:, CHANNEL_INDEX["headYaw"]]) > 1.0
    # an answer in between: a few seconds after it, the listening frames are the loop's again
    talk = stream_values([silence(3.0), speech(4.0)] + [silence(1.0) for _ in range(int(IDLE_LOOP_S))])
    after = slice(int(10 * FPS), int(IDLE_LOOP_S * FPS))
    assert np.abs(talk[after] - idle[after]).max() < 1e-6


def render_fn(renderer: I420Renderer, calls: list[Drawn]):
    def render(slot: int, values: np.ndarray, index: int, listening: bool, fresh: bool):
        image, seconds, how = renderer.render(values, index, listening, fresh)
        calls.append(how)
        return image, seconds, how

    return render


def test_a_listening_session_shows_the_loop_again_without_rendering_it(astronaut) -> None:
    values = stream_values([silence(1.0) for _ in range(2 * int(IDLE_LOOP_S) + 3)])
    renderer = I420Renderer(astronaut.rig)
    calls: list[Drawn] = []
    memo = FrameMemo(256 << 20, IDLE_LOOP_S)
    source = FrameSource(render_fn(renderer, calls), renderer.still_frames(), memo)
    shown = []
    for k in range(2 * LOOP):
        got = source.next(0, values[k], k, speaking=False)
        shown.append(got.image.copy())
        if k == LOOP - 1:
            rendered_first = len(calls)
    assert rendered_first > 100, "the first round is rendered"
    # (but for its first frames: the session's very first glance comes from straight ahead)
    assert len(calls) - rendered_first <= 2, "the second round renders nothing"
    assert source.recalled > 0.5 * LOOP
    assert all(np.array_equal(shown[k], shown[k + LOOP]) for k in range(25, LOOP)), "the same pictures"
    # the memo holds each image as the rows where it differs from the first: less than whole frames
    assert memo.nbytes < len({x.tobytes() for x in shown[:LOOP]}) * shown[0].nbytes

    # another session of the portrait, starting at another point of the loop, renders nothing at all
    calls_b: list[Drawn] = []
    renderer_b = I420Renderer(astronaut.rig)
    other = FrameSource(render_fn(renderer_b, calls_b), renderer_b.still_frames(), memo)
    for k in range(LOOP // 3, LOOP // 3 + LOOP // 2):
        got = other.next(0, values[k], k, speaking=False)
        assert np.array_equal(got.image, shown[k]), f"frame {k} as the first session showed it"
    assert len(calls_b) <= 1, "the second session renders at most its first frame"


def test_speech_after_frames_from_the_memo_is_rendered_right(astronaut) -> None:
    pieces = [silence(1.0) for _ in range(int(IDLE_LOOP_S) + 4)] + [speech(2.0), silence(1.0)]
    values = stream_values(pieces)
    renderer = I420Renderer(astronaut.rig)
    calls: list[Drawn] = []
    memo = FrameMemo(256 << 20, IDLE_LOOP_S)
    source = FrameSource(render_fn(renderer, calls), renderer.still_frames(), memo)
    exact = I420Renderer(astronaut.rig)
    start = int((IDLE_LOOP_S + 4) * FPS)
    # the first loop rendered (memo filled), then its start shown again from the memo
    for k in range(LOOP):
        source.next(0, values[k], k, speaking=False)
    for k in range(LOOP, start):
        source.next(0, values[k - LOOP], k, speaking=False)
    assert source.recalled > 0
    worst = float("inf")
    for k in range(start, start + int(2 * FPS)):
        got = source.next(0, values[k], k, speaking=True)
        want, _, _ = exact.render(values[k], k, False, fresh=True)
        worst = min(worst, psnr(got.image, want))
    assert worst > 40.0, f"speaking frames drawn over the memo's pictures differ from a render: {worst:.1f} dB"


def test_a_full_memo_keeps_what_it_holds_and_drops_what_did_not_come_again() -> None:
    h, w = 48, 32

    def image(i: int) -> np.ndarray:
        im = np.zeros((h * 3 // 2, w), np.uint8)
        im[i % h, :] = 1 + i  # differs from the first image in one luma row
        return im

    one = FrameMemo(1 << 20, 10.0)
    one.store(np.zeros(3), image(0), np.zeros(3), 0.0, None)
    one.store(np.ones(3), image(1), np.ones(3), 0.0, None)
    memo = FrameMemo(6 * (one.nbytes // 2), 10.0)  # a loop of ten frames, one a second, room for about six
    loop = [np.array([i, 0.0, 0.0]) for i in range(10)]
    for k, v in enumerate(loop):
        memo.store(v, image(k), v, float(k), None)
    kept = [k for k, v in enumerate(loop) if memo.recall(v, 10.0 + k) is not None]
    assert 5 <= len(kept) <= 6 and memo.nbytes <= memo.budget_bytes
    assert kept == list(range(len(kept))), "a full memo keeps what it has instead of trading it for the next"
    hit = memo.recall(loop[3], 19.0)
    assert hit is not None and np.array_equal(memo.image(hit[0]), image(3))
    # a frame after speech comes once: stored when the memo holds frames not shown for a whole loop
    late = np.array([50.0, 1.0, 1.0])
    assert memo.store(late, image(7), late, 40.0, None) is not None
    found = memo.recall(late, 41.0)
    assert found is not None and np.array_equal(memo.image(found[0]), image(7))
    assert memo.nbytes <= memo.budget_bytes


def test_sessions_of_one_portrait_share_its_memo_until_the_last_one_closes() -> None:
    shelf = MemoShelf(1 << 20, IDLE_LOOP_S)
    face, other = object(), object()
    a, b, c = shelf.take(face), shelf.take(face), shelf.take(other)
    assert a is b and a is not c
    assert a is not None
    a.store(np.zeros(3), np.ones((6, 4), np.uint8), np.zeros(3), 0.0, None)
    shelf.give_back(face)
    assert shelf.take(face) is a, "kept while a session shows the portrait"
    shelf.give_back(face)
    shelf.give_back(face)
    assert shelf.take(face) is not a, "dropped with the last session"
    assert MemoShelf(0, IDLE_LOOP_S).take(face) is None


def test_a_portraits_memo_waits_for_its_next_session_among_the_last_few_shown() -> None:
    shelf = MemoShelf(1 << 20, IDLE_LOOP_S, keep=2)
    faces = [object() for _ in range(3)]
    memos = [shelf.take(f) for f in faces]
    assert memos[2] is not None
    memos[2].store(np.zeros(3), np.ones((6, 4), np.uint8), np.zeros(3), 0.0, None)
    for f in faces:
        shelf.give_back(f)
    assert shelf.take(faces[1]) is memos[1] and shelf.take(faces[2]) is memos[2], "kept for the next session"
    assert memos[2].recall(np.zeros(3), 1.0) is not None, "with the frames it held"
    assert shelf.take(faces[0]) is not memos[0], "the portrait shown longest ago makes room"
