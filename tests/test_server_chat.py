"""Chat in a live session: a persona whose endpoint is a local server speaking the real streaming
protocol (``tools.fakechat``: HTTP chunked server-sent events); an aiortc client over loopback hears
the reply while it is still streaming, and interrupt stops both the speech and the stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.settings import Settings
from server.testing import LiveServer, shared_engine
from tools.fakechat import FakeChatServer, tokens
from tools.rtc_client import AvatarClient

REPLY = (
    "Ahoy there, friend! We are sailing north to the old harbour, where the fish are fresh. "
    "The wind is fair and the tide is turning."
)
LONG_REPLY = " ".join(["Let me tell you a very long story about the sea, the wind and the old ship."] * 12)


@pytest.fixture(scope="module")
def chat_server() -> Iterator[FakeChatServer]:
    def reply(body: dict[str, Any]) -> str:
        return LONG_REPLY if "story" in body["messages"][-1]["content"] else REPLY

    with FakeChatServer(reply, token_delay_s=0.06, first_token_delay_s=0.05) as srv:
        yield srv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chat_server: FakeChatServer) -> Iterator[LiveServer]:
    settings = Settings(
        chat_endpoints={chat_server.base_url: ""},
        data_dir=tmp_path_factory.mktemp("data"),
        debug_markers=True,
        max_sessions=2,
        job_workers=0,
        render_processes=False,
        persona_voice_embeddings=False,
    )
    with LiveServer(settings, shared_engine()) as srv:
        yield srv


@pytest.fixture(scope="module")
def captain(server: LiveServer, chat_server: FakeChatServer) -> str:
    r = httpx.post(
        server.url + "/personas",
        data={
            "description": "a cheerful old sea captain",
            "voice_id": "piper:joe",
            "chat_base_url": chat_server.base_url,
            "chat_model": "fake-captain",
            "chat_api_key_env": "",
        },
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["persona_id"])


async def open_client(server: LiveServer, persona_id: str | None) -> AvatarClient:
    c = AvatarClient(server.url, decode_markers=True)
    await c.connect(persona_id=persona_id)
    await asyncio.wait_for(c.connected.wait(), 20)
    await c.wait_frames(5)
    return c


async def until(pred: Any, timeout: float, what: str) -> None:
    t_end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < t_end, what
        await asyncio.sleep(0.01)


def test_chat_reply_is_spoken_while_it_streams(server: LiveServer, chat_server: FakeChatServer, captain: str) -> None:
    async def go() -> dict[str, Any]:
        c = await open_client(server, captain)
        info = await c.status()
        chat_server.sent.clear()
        n_req = len(chat_server.requests)
        t0 = time.perf_counter()
        r = await c.chat("Where are we sailing?")
        assert r.status_code == 202, r.text
        body = r.json()
        await until(lambda: any(v.marker and v.marker.speaking for v in c.received.video), 15, "speech never started")
        first = next(v for v in c.received.video if v.marker and v.marker.speaking)
        await until(lambda: len(chat_server.sent) == len(tokens(REPLY)), 15, "the reply never finished")
        last_token = chat_server.sent[-1][0]
        await asyncio.sleep(0.3)
        await until(lambda: not server.state.manager.get(c.session_id).status().speaking, 30, "never finished")
        status = await c.status()
        await c.close()
        return {"c": c, "t0": t0, "first": first, "last_token": last_token, "body": body, "info": info,
                "request": chat_server.requests[n_req], "status": status}  # fmt: skip

    out = asyncio.run(go())
    c: AvatarClient = out["c"]
    assert out["body"]["mode"] == "chat"
    assert out["info"]["persona_id"] == captain and out["info"]["chat_endpoint"] == chat_server.base_url
    req = out["request"]
    assert req["model"] == "fake-captain" and req["stream"] is True
    assert req["messages"][0]["role"] == "system" and "Captain" in req["messages"][0]["content"]
    assert req["messages"][-1] == {"role": "user", "content": "Where are we sailing?"}
    # speech reached the client before the endpoint had sent the whole reply
    assert out["first"].t < out["last_token"], "speech started only after the reply was complete"
    loud = [a for a in c.received.audio if a.t > out["first"].t - 0.2 and a.beep is None and a.rms > 0.02]
    assert len(loud) > 50, "the reply is audible (more than a second of speech)"
    # every sentence was spoken: speech lasts about as long as the whole reply takes to say
    speaking = [v for v in c.received.video if v.marker and v.marker.speaking]
    assert len(speaking) > 25 * 4, f"only {len(speaking) / 25:.1f} s of speech for three sentences"
    assert out["status"]["errors"] == []


def test_interrupt_stops_the_reply_and_its_stream(
    server: LiveServer, chat_server: FakeChatServer, captain: str
) -> None:
    async def go() -> dict[str, Any]:
        c = await open_client(server, captain)
        chat_server.sent.clear()
        r = await c.chat("Tell me a story.")
        assert r.status_code == 202
        await until(lambda: any(v.marker and v.marker.speaking for v in c.received.video), 15, "speech never started")
        await asyncio.sleep(0.5)
        cut = (await c.interrupt()).json()
        t_int = time.perf_counter()
        sent_at_cut = len(chat_server.sent)
        await asyncio.sleep(0.6)
        sent_after = len(chat_server.sent)
        await asyncio.sleep(0.6)
        sent_later = len(chat_server.sent)
        status = await c.status()
        # the session still chats after the interrupt
        r2 = await c.chat("Where are we sailing?", interrupt=True)
        n0 = len(c.received.video)
        await until(
            lambda: any(v.marker and v.marker.speaking for v in c.received.video[n0:]), 15, "no speech after interrupt"
        )
        await c.close()
        return {"c": c, "cut": cut, "t_int": t_int, "at_cut": sent_at_cut, "after": sent_after,
                "later": sent_later, "status": status, "r2": r2.json()}  # fmt: skip

    out = asyncio.run(go())
    total = len(tokens(LONG_REPLY))
    assert out["cut"]["interrupted"] is True
    assert out["at_cut"] < total
    assert out["after"] <= out["at_cut"] + 3, "the endpoint stopped streaming within a token or two"
    assert out["later"] == out["after"], "nothing streamed after the interrupt"
    assert out["status"]["speaking"] is False and out["status"]["errors"] == []
    k = out["cut"]["idle_from_frame"]
    c: AvatarClient = out["c"]
    before_second = [v for v in c.received.video if v.marker and v.t < out["t_int"] + 1.2]
    assert all(not v.marker.speaking for v in before_second if v.marker.index >= k), "nothing spoken after the cut"
    assert out["r2"]["mode"] == "chat"
    # the next turn carries the conversation so far (the part of the story that was spoken)
    msgs = chat_server.requests[-1]["messages"]
    assert {"role": "user", "content": "Tell me a story."} in msgs
    assert any(m["role"] == "assistant" and m["content"].startswith("Let me tell you") for m in msgs)


def test_without_an_endpoint_chat_repeats(server: LiveServer) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        c = await open_client(server, None)
        r = (await c.chat("Hello there.")).json()
        await until(lambda: any(v.marker and v.marker.speaking for v in c.received.video), 15, "speech never started")
        info = await c.status()
        await c.close()
        return r, info

    r, info = asyncio.run(go())
    assert r["mode"] == "repeat" and info["chat_endpoint"] is None and info["persona_id"] is None


def test_unknown_persona_session_is_404(server: LiveServer) -> None:
    async def go() -> str:
        c = AvatarClient(server.url)
        try:
            await c.connect(persona_id="nosuch")
        except RuntimeError as e:
            return str(e)
        finally:
            await c.close(delete=False)
        return ""

    msg = asyncio.run(go())
    assert "404" in msg and "no persona 'nosuch'" in msg


def test_a_failing_endpoint_is_reported_in_the_session_status(server: LiveServer) -> None:
    with FakeChatServer(status=503, error="the model is loading") as broken:
        server.settings.chat_endpoints[broken.base_url] = ""  # the operator lists it
        r = httpx.post(
            server.url + "/personas",
            data={"description": "a quiet man", "voice_id": "piper:joe", "chat_base_url": broken.base_url},
            timeout=60,
        )
        assert r.status_code == 201, r.text

        async def go() -> dict[str, Any]:
            c = await open_client(server, r.json()["persona_id"])
            assert (await c.chat("Hello?")).json()["mode"] == "chat"
            t_end = time.monotonic() + 10
            status = await c.status()
            while not status["errors"] and time.monotonic() < t_end:
                await asyncio.sleep(0.05)
                status = await c.status()
            await c.close()
            return status

        status = asyncio.run(go())
    assert status["speaking"] is False
    assert len(status["errors"]) == 1 and "answered HTTP 503" in status["errors"][0]
    assert "the model is loading" not in status["errors"][0], "the endpoint's own words are not shown to clients"
