"""Audio streamed into a live session over its WebSocket: real server, real aiortc client, real speech."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import websockets

from audio.io import load_audio
from server.settings import Settings
from server.testing import LiveServer, shared_engine
from tests.conftest import media
from tools.rtc_client import AudioSocket, AvatarClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        debug_markers=True,
        job_workers=0,
        render_processes=False,
        audio_in_max_message_bytes=65536,
    )
    with LiveServer(settings, shared_engine()) as srv:
        yield srv


def speech(name: str = "librivox_ss01_0870", seconds: float = 3.0) -> tuple[np.ndarray, int]:
    """The start of a real recording as int16 samples, and its rate."""
    x, sr = load_audio(str(media("speech", f"{name}.wav")))
    return np.round(x[: int(seconds * sr)] * 32767).astype(np.int16), sr


async def connect(server: LiveServer, api_key: str | None = None) -> AvatarClient:
    c = AvatarClient(server.url, api_key=api_key, decode_markers=True, keep_luma=True)
    await c.connect()
    await asyncio.wait_for(c.connected.wait(), 20)
    await c.wait_frames(5)
    return c


def mouth_box(size: int = 512) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around the default portrait's lips (mediapipe landmarks 61, 291, 0, 17)."""
    v = shared_engine().avatar(None, "default", (size, size)).rig.verts
    x0, x1 = int(v[61, 0]), int(v[291, 0])
    y0, y1 = int(v[0, 1]), int(v[17, 1])
    return x0, y0, x1, y1


def spoken_frames(c: AvatarClient, t_from: float, t_to: float) -> list[bool]:
    """Whether each marked frame received in [t_from, t_to) shows the lips apart."""
    return [v.marker.mouth_open for v in c.received.video if v.marker and t_from <= v.t < t_to]


def test_streamed_speech_moves_the_mouth_and_a_stall_closes_it(server: LiveServer) -> None:
    pcm, sr = speech()

    async def go() -> tuple[AvatarClient, AudioSocket, dict[str, object]]:
        c = await connect(server)
        sock = await c.open_audio(sr)
        await sock.stream(pcm, sr)
        await asyncio.sleep(1.5)  # the client stops sending without ending the utterance
        status = await c.status()
        await sock.close()
        await c.close()
        return c, sock, status

    c, sock, status = asyncio.run(go())
    assert sock.ready["type"] == "ready" and sock.ready["sample_rate"] == sr
    assert status["audio_in_s"] == pytest.approx(3.0, abs=0.05)
    marked = [v for v in c.received.video if v.marker]
    speaking = [i for i, v in enumerate(marked) if v.marker.speaking]
    assert len(speaking) > 50, "the 3 s of audio play as one utterance"
    during = [marked[i].marker.mouth_open for i in range(speaking[0], speaking[-1] + 1)]
    assert np.mean(during) > 0.5, "the lips part for most frames of running speech"
    assert not all(during), "and close between syllables and in the recording's pauses"
    assert not any(v.marker.mouth_open for v in marked[: speaking[0]]), "closed before the audio"
    after = marked[speaking[-1] + 1 :]
    assert len(after) > 15 and not any(v.marker.mouth_open for v in after), "stalled: closed, not frozen open"
    assert status["speaking"] is False
    t_end = marked[speaking[-1]].t
    assert max(a.rms for a in c.received.audio if a.t < t_end and a.beep is None) > 0.05, "the speech is heard"
    quiet = [a.rms for a in c.received.audio if t_end + 0.3 < a.t and a.beep is None]
    assert quiet and max(quiet) < 0.01
    # what a viewer sees: the lip region of an open frame differs from the mouth at rest just before the
    # audio far more than those resting frames differ from each other (the head's slow sway moves them too)
    x0, y0, x1, y1 = mouth_box()
    crops = [
        (v.marker.mouth_open, luma[y0:y1, x0:x1].astype(np.float32))
        for v, luma in zip(c.received.video, c.received.luma)
        if v.marker
    ]
    rest = [m for _, m in crops[max(0, speaking[0] - 12) : speaking[0]]]
    closed = np.median(np.stack(rest), axis=0)
    open_diff = np.mean([np.abs(m - closed).mean() for o, m in crops if o])
    closed_diff = np.mean([np.abs(m - closed).mean() for m in rest])
    print(f"lip region: open {open_diff:.1f}, at rest {closed_diff:.1f} grey levels from the median at rest")
    assert open_diff > 2 * closed_diff and open_diff > 10


def test_a_new_utterance_barges_in(server: LiveServer) -> None:
    a, sr = speech("librivox_ss01_0870", 3.0)
    b, _ = speech("librivox_ss01_0880", 1.0)

    async def go() -> tuple[AvatarClient, float, float, int, dict[str, object]]:
        c = await connect(server)
        sock = await c.open_audio(sr)
        for i in range(0, len(a), sr):  # three seconds at once (a TTS service faster than real time)
            await sock.send_pcm(a[i : i + sr])
        await asyncio.sleep(1.0)
        t_cut = time.perf_counter()
        await sock.control("start")  # a new utterance: what plays stops
        started = await sock.next_message()
        await asyncio.sleep(0.8)
        t_b = time.perf_counter()
        await sock.send_pcm(b)
        await sock.control("end")
        await asyncio.sleep(1.8)
        await sock.close()
        status = await c.status()
        await c.close()
        return c, t_cut, t_b, started["utterance_id"], status

    c, t_cut, t_b, uid, status = asyncio.run(go())
    assert uid >= 2
    heard = [x for x in c.received.audio if x.beep is None]
    assert max(x.rms for x in heard if x.t < t_cut) > 0.05, "the first utterance played"
    gap = [x.rms for x in heard if t_cut + 0.4 < x.t < t_b]
    assert gap and max(gap) < 0.01, "and stopped at the new utterance, two seconds before its end"
    assert max(x.rms for x in heard if x.t > t_b) > 0.02, "the new one plays"
    assert status["speaking"] is False


def test_interrupt_message_stops_the_audio(server: LiveServer) -> None:
    a, sr = speech("librivox_ss01_0870", 3.0)

    async def go() -> tuple[AvatarClient, float, dict[str, object]]:
        c = await connect(server)
        sock = await c.open_audio(sr)
        for i in range(0, len(a), sr):
            await sock.send_pcm(a[i : i + sr])
        await asyncio.sleep(1.0)
        t_int = time.perf_counter()
        await sock.control("interrupt")
        reply = await sock.next_message()
        await asyncio.sleep(1.0)
        await sock.close()
        await c.close()
        return c, t_int, reply

    c, t_int, reply = asyncio.run(go())
    assert reply["type"] == "interrupted" and reply["interrupted"] is True
    quiet = [a_.rms for a_ in c.received.audio if a_.t > t_int + 0.4 and a_.beep is None]
    assert quiet and max(quiet) < 0.01, "nothing of the cut utterance plays after the interrupt"
    after = spoken_frames(c, t_int + 0.4, t_int + 10)
    assert after and not any(after)


async def refused(server: LiveServer, path: str, *messages: str | bytes) -> tuple[int, str]:
    """Open a socket, send ``messages``, return the server's close code and reason."""
    url = "ws" + server.url[4:] + path
    async with websockets.connect(url) as ws:
        for m in messages:
            await ws.send(m)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 15)
        except websockets.ConnectionClosed as e:
            assert e.rcvd is not None
            return e.rcvd.code, e.rcvd.reason
    raise AssertionError("the socket was not closed")


def test_wrong_formats_get_specific_close_reasons(server: LiveServer) -> None:
    async def go() -> list[tuple[int, str]]:
        c = await connect(server)
        base = f"/sessions/{c.session_id}/audio"
        out = [
            await refused(server, f"{base}?sample_rate=0"),
            await refused(server, f"{base}?sample_rate=16000&encoding=f32le"),
            await refused(server, f"{base}?sample_rate=16000&channels=2", b"\x00\x01\x02"),
            await refused(server, base, b"\x00\x00"),
            await refused(server, base, '{"sample_rate": "fast"}'),
            await refused(server, f"{base}?sample_rate=16000", '{"type": "shout"}'),
            await refused(server, "/sessions/nope/audio?sample_rate=16000"),
            await refused(server, f"{base}?sample_rate=16000", bytes(65538)),
        ]
        await c.close()
        return out

    got = asyncio.run(go())
    want = [
        (1003, "sample_rate 0 is outside 8000..192000"),
        (1003, "encoding 'f32le' is not supported; send s16le"),
        (1003, "3 bytes is not whole s16le frames of 2 channel(s)"),
        (4400, "declare the format"),
        (1003, "sample_rate must be a whole number"),
        (4400, "unknown message type 'shout'"),
        (4404, "no session nope"),
        (1009, "an audio message may be at most 65536 bytes"),
    ]
    assert len(got) == len(want)
    for (code, reason), (want_code, words) in zip(got, want):
        assert code == want_code and words in reason, (code, reason)


def test_one_audio_stream_per_session_and_cross_site_refused(server: LiveServer) -> None:
    async def go() -> tuple[int, str, int]:
        c = await connect(server)
        sock = await c.open_audio(16000)
        try:
            await c.open_audio(16000)
        except websockets.ConnectionClosed as e:
            assert e.rcvd is not None
            busy = (e.rcvd.code, e.rcvd.reason)
        await sock.close()
        url = "ws" + server.url[4:] + f"/sessions/{c.session_id}/audio?sample_rate=16000"
        try:
            async with websockets.connect(url, additional_headers={"Origin": "https://evil.example"}):
                status = 101
        except websockets.InvalidStatus as e:
            status = e.response.status_code
        await c.close()
        return *busy, status

    code, reason, status = asyncio.run(go())
    assert code == 4409 and "already takes audio from another stream" in reason
    assert status == 403, "a page on another site may not open a socket into a session"


def test_unauthenticated_socket_refused_when_keys_are_configured(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key="right-key", job_workers=0, render_processes=False)
    with LiveServer(settings, shared_engine()) as srv:

        async def go() -> tuple[tuple[int, str], tuple[int, str], str, str]:
            c = await connect(srv, api_key="right-key")
            path = f"/sessions/{c.session_id}/audio?sample_rate=16000"
            out = []
            for headers in ({}, {"X-API-Key": "wrong"}):
                url = "ws" + srv.url[4:] + path
                async with websockets.connect(url, additional_headers=headers) as ws:
                    if not headers:
                        await ws.send('{"sample_rate": 16000}')  # no key in the first message either
                    try:
                        await asyncio.wait_for(ws.recv(), 15)
                    except websockets.ConnectionClosed as e:
                        assert e.rcvd is not None
                        out.append((e.rcvd.code, e.rcvd.reason))
            ok = await c.open_audio(16000)  # the key in the header
            await ok.close()
            browser = await c.open_audio(16000, api_key="right-key", in_query=False)  # ... or the first message
            await browser.close()
            await c.close()
            return out[0], out[1], ok.ready["type"], browser.ready["type"]

        no_key, bad_key, ok, browser = asyncio.run(go())
        assert no_key[0] == 4401 and "needs an API key" in no_key[1]
        assert bad_key[0] == 4403 and "not valid" in bad_key[1]
        assert ok == browser == "ready"


@pytest.mark.parametrize("peer_audio", ["speak", "ignore"])
def test_the_peers_own_audio_track(server: LiveServer, peer_audio: str) -> None:
    """A client that sends an audio track (here a recording, as a microphone would) with ``peer_audio:
    speak`` is lip-synced to it; by default a microphone is not echoed."""
    from aiortc.contrib.media import MediaPlayer

    async def go() -> tuple[AvatarClient, dict[str, object]]:
        player = MediaPlayer(str(media("speech", "librivox_ss01_0870.wav")))
        c = AvatarClient(server.url, decode_markers=True)
        await c.connect(send_audio=player.audio, peer_audio=peer_audio)
        await asyncio.wait_for(c.connected.wait(), 20)
        await c.wait_frames(90)
        status = await c.status()
        await c.close()
        if player.audio is not None:
            player.audio.stop()
        return c, status

    c, status = asyncio.run(go())
    marked = [v.marker for v in c.received.video if v.marker]
    opened = sum(m.mouth_open for m in marked)
    loud = max(a.rms for a in c.received.audio if a.beep is None)
    if peer_audio == "speak":
        assert status["audio_in_s"] > 1.0 and opened > 20 and loud > 0.05, "the avatar says what the peer sends"
    else:
        assert status["audio_in_s"] == 0 and opened == 0 and loud < 0.01


def test_the_default_buffer_holds_the_models_look_ahead() -> None:
    """At the defaults every streamed frame's mouth is computed on real audio, not on silence ahead."""
    from motion.lipsync import LipsyncModel

    assert LipsyncModel.load().config.lookahead_s <= Settings().audio_in_buffer_ms / 1000


def test_a_lip_sync_model_folder_without_a_model_is_refused_by_name(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from pydantic import ValidationError

    from server.testing import free_port

    def serve_stderr() -> str:
        env = dict(os.environ, TALKER_LIPSYNC_MODEL=str(tmp_path))
        cmd = [sys.executable, "-m", "talker.cli", "serve", "--port", str(free_port())]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode != 0
        return r.stderr

    with pytest.raises(ValidationError, match="need config.json and model.safetensors"):
        Settings(lipsync_model=tmp_path)
    err = serve_stderr()
    assert "lipsync_model" in err and "Traceback" not in err
    # files that are there but do not belong together: the same, no traceback
    (tmp_path / "config.json").write_text('{"channels": 8}')
    (tmp_path / "model.safetensors").write_bytes(b"not a model")
    err = serve_stderr()
    assert str(tmp_path) in err and "not a safetensors file" in err and "Traceback" not in err, err[-600:]
