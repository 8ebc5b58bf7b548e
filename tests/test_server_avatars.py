"""Video avatars on the server: a clip uploaded and prepared in the background, then the face of a live
session over real WebRTC (the loop while silent, the mouth redrawn while speaking) and of render jobs;
each tenant's avatars kept apart; bad clips refused with the reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from server.avatars import AvatarStore
from server.settings import Settings
from server.testing import LiveServer, shared_engine
from tools.rtc_client import AvatarClient

SIZE = 384
KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-0123456789ab"}


def as_(who: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[who]}


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5.6 s of a portrait listening (idle motion: blinks, head drift), rendered by the pipeline."""
    from audio import types
    from talker.pipeline import Pipeline, RenderSettings
    from tests.conftest import media

    out = tmp_path_factory.mktemp("clip") / "obama_idle.mp4"
    p = Pipeline(detector=shared_engine().detector)
    avatar = p.prepare_avatar(media("faces", "obama.jpg"), (SIZE, SIZE))
    p.render_mp4(avatar, types.silence(5.6, 16000), out, RenderSettings(size=(SIZE, SIZE)))
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("data")
    keys = data / "keys.json"
    keys.write_text(json.dumps({"keys": [{"key": k, "tenant": t} for t, k in KEYS.items()]}))
    settings = Settings(data_dir=data, api_keys_file=keys, debug_markers=True, size=SIZE, max_sessions=2, job_workers=1)
    with LiveServer(settings, shared_engine()) as srv:
        yield srv


def wait_ready(server: LiveServer, name: str, who: str = "alice", timeout: float = 120.0) -> dict[str, Any]:
    t_end = time.monotonic() + timeout
    seen = set()
    while True:
        r = httpx.get(f"{server.url}/avatars/{name}", headers=as_(who), timeout=30)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        seen.add(body["status"])
        if body["status"] not in ("queued", "preparing"):
            body["seen"] = seen
            return body
        assert time.monotonic() < t_end, f"avatar {name} not prepared in {timeout} s: {body}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def anna(server: LiveServer, clip: Path) -> dict[str, Any]:
    r = httpx.post(
        f"{server.url}/avatars",
        files={"video": ("obama_idle.mp4", clip.read_bytes(), "video/mp4")},
        data={"name": "anna"},
        headers=as_("alice"),
        timeout=60,
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued" and r.json()["name"] == "anna"
    return wait_ready(server, "anna")


def loop_of(server: LiveServer, tenant: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The prepared loop's luma frames and its landmarks (the player's own files)."""
    from talker.video import read_i420

    folder = AvatarStore(server.settings.data_dir).folder(tenant, name)
    assert folder is not None
    luma = np.stack([f[:SIZE] for f in read_i420(folder / "loop.mp4")])
    with np.load(folder / "track.npz") as z:
        points = z["points"]
    return luma, points


def test_a_clip_is_prepared_in_the_background_with_its_facts(server: LiveServer, anna: dict[str, Any]) -> None:
    assert anna["status"] == "ready", anna
    assert anna["width"] == anna["height"] == SIZE and anna["fps"] == 25
    assert 3.0 <= anna["loop_s"] <= 5.6 and anna["frames"] == round(anna["loop_s"] * 25)
    assert anna["bytes"] > 10_000 and anna["prepare_s"] > 0 and anna["source"] == "obama_idle.mp4"
    listed = httpx.get(f"{server.url}/avatars", headers=as_("alice")).json()
    assert [a["name"] for a in listed] == ["anna"] and listed[0]["status"] == "ready"


def test_another_tenant_cannot_see_use_or_delete_it(server: LiveServer, anna: dict[str, Any]) -> None:
    url, bob = server.url, as_("bob")
    assert httpx.get(f"{url}/avatars", headers=bob).json() == []
    r = httpx.get(f"{url}/avatars/anna", headers=bob)
    assert r.status_code == 404 and "no video avatar 'anna'" in r.json()["detail"]
    assert httpx.delete(f"{url}/avatars/anna", headers=bob).status_code == 404
    r = httpx.post(f"{url}/renders", data={"text": "Hi.", "avatar": "anna"}, headers=bob)
    assert r.status_code == 404 and "no video avatar" in r.json()["detail"]

    async def offer() -> str:
        c = AvatarClient(url, api_key=KEYS["bob"])
        try:
            await c.connect(avatar="anna")
        except RuntimeError as e:
            return str(e)
        finally:
            await c.close(delete=False)
        return "opened"

    assert "404" in asyncio.run(offer())
    assert httpx.get(f"{url}/avatars/anna", headers=as_("alice")).json()["status"] == "ready", "alice's is untouched"


def _mouth_box(points: np.ndarray) -> tuple[slice, slice]:
    lips = points[[61, 291, 0, 17], :2]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    pad = 0.3 * (x1 - x0)
    return slice(int(y0 - pad), int(y1 + pad)), slice(int(x0 - pad), int(x1 + pad))


def test_a_session_plays_the_loop_while_silent_and_redraws_the_mouth_while_speaking(
    server: LiveServer, anna: dict[str, Any]
) -> None:
    loop, points = loop_of(server, "alice", "anna")

    async def go() -> tuple[AvatarClient, dict[str, Any]]:
        c = AvatarClient(server.url, api_key=KEYS["alice"], decode_markers=True, keep_luma=True)
        await c.connect(avatar="anna")
        await asyncio.wait_for(c.connected.wait(), 20)
        await c.wait_frames(40)
        r = await c.say("Hello there, how are you today?")
        assert r.status_code == 202, r.text
        t_end = time.monotonic() + 20
        while not any(v.marker and v.marker.speaking for v in c.received.video):
            assert time.monotonic() < t_end, "speech never started"
            await asyncio.sleep(0.05)
        while (await c.status())["speaking"]:
            assert time.monotonic() < t_end + 10, "speech never ended"
            await asyncio.sleep(0.1)
        n = len(c.received.video)
        await c.wait_frames(n + 40)
        status = await c.status()
        await c.close()
        return c, status

    c, status = asyncio.run(go())
    assert status["avatar"] == "anna" and status["portrait_id"] == "avatar:anna" and not status["errors"]
    video, luma = c.received.video, c.received.luma
    assert len(video) == len(luma) >= 100 and video[0].width == SIZE
    top = 24  # (the debug marker's blocks)
    # every received frame is a frame of the loop (matched outside the mouth), the mouth redrawn or not
    speaking_idx = [k for k, v in enumerate(video) if v.marker and v.marker.speaking]
    assert speaking_idx
    first, last = speaking_idx[0], speaking_idx[-1]
    match, body_err, mouth_err = [], [], []
    ref = loop.astype(np.int16)
    for k in range(5, len(video)):
        frame = luma[k].astype(np.int16)
        j = int(np.argmin(np.abs(ref[:, top::4, ::4] - frame[top::4, ::4]).mean(axis=(1, 2))))
        ys, xs = _mouth_box(points[j])
        mask = np.ones((SIZE, SIZE), bool)
        mask[:top] = False
        mask[ys, xs] = False
        match.append(j)
        body_err.append(float(np.abs(ref[j] - frame)[mask].mean()))
        mouth_err.append(float(np.abs(ref[j][ys, xs] - frame[ys, xs]).mean()))
    ks = np.arange(5, len(video))
    match_a, body_a, mouth_a = np.array(match), np.array(body_err), np.array(mouth_err)
    assert np.median(body_a) < 3.0, "outside the mouth every frame is the clip's own"
    silent = (ks < first - 2) | (ks > last + 25)  # (the redraw fades out over 12 frames after speech)
    apart = np.array([bool(video[k].marker and video[k].marker.mouth_open) for k in ks])
    talking = (ks >= first) & (ks <= last) & apart
    assert silent.sum() >= 40 and talking.sum() >= 10
    assert np.median(mouth_a[silent]) < 3.0, "while silent the mouth is the clip's own too"
    assert np.median(mouth_a[talking]) > 2.5 * np.median(mouth_a[silent]) + 1.0, "speech redraws the mouth"
    # the loop plays while silent: consecutive frames show consecutive loop frames (not one frozen frame)
    idle_pairs = [(match_a[i], match_a[i + 1]) for i in range(len(ks) - 1) if silent[i] and silent[i + 1]]
    steps = np.array([(b - a) % len(loop) for a, b in idle_pairs])
    assert np.mean(steps == 1) > 0.7, f"idle frames step through the loop one by one: {np.bincount(steps)[:5]}"
    assert len(set(match_a[silent].tolist())) > 30, "the idle loop plays"


def frames_of(path: Path, n: int | None = None) -> list[np.ndarray]:
    from talker.video import read_frames

    return list(read_frames(path, n))


def post_clip(server: LiveServer, data: bytes, name: str, who: str = "alice") -> httpx.Response:
    return httpx.post(
        f"{server.url}/avatars",
        files={"video": ("c.mp4", data, "video/mp4")},
        data={"name": name},
        headers=as_(who),
        timeout=60,
    )


def test_bad_clips_are_refused_with_the_reason(server: LiveServer, clip: Path, tmp_path: Path) -> None:
    from tests.conftest import media

    good = clip.read_bytes()
    cases: list[tuple[bytes, str, int, str]] = [
        (b"", "e1", 400, "empty"),
        (b"this is not a video at all" * 40, "e2", 415, "the uploaded video"),
        (good[: len(good) // 3], "e3", 415, "the uploaded video"),  # cut off mid-file
        (good, "../etc", 422, "avatar name '../etc'"),
        (good, "anna", 409, "already have a video avatar named 'anna'"),
    ]
    short = write_clip(tmp_path / "short.mp4", frames_of(clip, 50))
    cases.append((short.read_bytes(), "e4", 422, "lasts 2.0 s; a video avatar needs a clip of 5 s to 180 s"))
    long = write_clip(tmp_path / "long.mp4", [np.full((64, 64, 3), 90, np.uint8)] * 370, fps=2)
    cases.append((long.read_bytes(), "e5", 422, "the limit"))
    y, x = np.mgrid[0:160, 0:160]
    plain = [np.dstack([(x + k) % 256, y, np.full_like(x, 128)]).astype(np.uint8) for k in range(60)]
    nobody = write_clip(tmp_path / "nobody.mp4", plain, fps=10)
    cases.append((nobody.read_bytes(), "e6", 422, "no face found in the uploaded video"))
    for data, name, status, words in cases:
        r = post_clip(server, data, name)
        assert r.status_code == status and words in r.json()["detail"], (name, r.status_code, r.text)
        assert "Traceback" not in r.text
    assert [a["name"] for a in httpx.get(f"{server.url}/avatars", headers=as_("alice")).json()] == ["anna"]

    # several people: accepted with a note; deleting it cancels its preparation
    import cv2

    two = cv2.cvtColor(cv2.imread(str(media("faces", "obama_biden_two_people.jpg"))), cv2.COLOR_BGR2RGB)
    two = cv2.resize(two, (480, int(480 * two.shape[0] / two.shape[1])) if two.shape[1] > 480 else two.shape[1::-1])
    two = two[: two.shape[0] // 2 * 2, : two.shape[1] // 2 * 2]
    r = post_clip(server, write_clip(tmp_path / "two.mp4", [two] * 60, fps=10).read_bytes(), "pair")
    assert r.status_code == 202, r.text
    assert any("shows 2 faces" in n and "the largest" in n for n in r.json()["notes"]), r.json()
    assert httpx.delete(f"{server.url}/avatars/pair", headers=as_("alice")).status_code == 204
    assert httpx.get(f"{server.url}/avatars/pair", headers=as_("alice")).status_code == 404


def test_a_clip_that_loses_the_face_fails_with_the_reason(server: LiveServer, clip: Path, tmp_path: Path) -> None:
    frames = frames_of(clip, 60)
    gray = np.full_like(frames[0], 100)
    path = write_clip(tmp_path / "gone.mp4", frames + [gray] * 90)
    r = post_clip(server, path.read_bytes(), "gone")
    assert r.status_code == 202, r.text
    done = wait_ready(server, "gone")
    assert done["status"] == "failed" and "frames without a face" in done["error"], done
    r = httpx.post(f"{server.url}/renders", data={"text": "Hi.", "avatar": "gone"}, headers=as_("alice"))
    assert r.status_code == 409 and "could not be prepared" in r.json()["detail"]
    # the name can be used again; deleting removes the failed record
    assert httpx.delete(f"{server.url}/avatars/gone", headers=as_("alice")).status_code == 204
    assert httpx.get(f"{server.url}/avatars/gone", headers=as_("alice")).status_code == 404


def test_a_render_job_speaks_with_the_video_avatar_and_a_personas_voice(
    server: LiveServer, anna: dict[str, Any]
) -> None:
    from talker.video import probe_video

    r = httpx.post(
        f"{server.url}/personas",
        data={"description": "a calm man", "voice_id": "espeak:en-us"},
        headers=as_("alice"),
        timeout=60,
    )
    assert r.status_code == 201, r.text
    persona = r.json()["persona_id"]
    r = httpx.post(
        f"{server.url}/renders",
        data={"text": "Good morning.", "avatar": "anna", "persona_id": persona},
        headers=as_("alice"),
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["portrait_id"] == "avatar:anna" and job["persona_id"] == persona
    assert job["size"] == SIZE and job["fps"] == 25
    t_end = time.monotonic() + 120
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < t_end, job
        time.sleep(0.3)
        job = httpx.get(f"{server.url}/renders/{job['job_id']}", headers=as_("alice")).json()
    assert job["status"] == "done", job
    mp4 = httpx.get(f"{server.url}/renders/{job['job_id']}/result", headers=as_("alice"))
    out = Path(server.settings.data_dir) / "anna.mp4"
    out.write_bytes(mp4.content)
    info = probe_video(out)
    assert (info.width, info.height, info.fps) == (SIZE, SIZE, 25) and info.has_audio and info.duration_s > 0.8


def test_frames_rendered_anew_show_the_same_loop_frames(server: LiveServer, anna: dict[str, Any]) -> None:
    """A session re-renders the frames it had rendered ahead when speech starts or is interrupted: they show
    the loop frames they showed before, and frames skipped as late do not advance the loop."""
    from motion.types import CHANNELS
    from server.render_pool import VideoI420Renderer
    from talker.avatar_player import VideoAvatar

    assert anna["idle_mouth"] == "own", "a listening clip: silent frames are the loop's own"
    loop, _ = loop_of(server, "alice", "anna")
    folder = AvatarStore(server.settings.data_dir).folder("alice", "anna")
    r = VideoI420Renderer(VideoAvatar(folder))  # type: ignore[arg-type]
    silent = np.zeros(len(CHANNELS), np.float32)
    shown = [r.render(silent, k)[0][:SIZE].copy() for k in range(10)]
    assert all(np.array_equal(a, b) for a, b in zip(shown, loop[:10])), "silent frames are the loop's, in order"
    again = [r.render(silent, k)[0][:SIZE].copy() for k in (7, 8, 9)]
    assert all(np.array_equal(a, b) for a, b in zip(again, loop[7:10])), "frames 7-9 rendered anew are the same"
    after_gap = r.render(silent, 14)[0][:SIZE]  # frames 10-13 were never rendered (too late)
    assert np.array_equal(after_gap, loop[10]), "the loop goes on where it was"


def test_deleting_it_waits_for_its_sessions_then_it_is_gone(server: LiveServer, anna: dict[str, Any]) -> None:
    async def go() -> tuple[int, str]:
        c = AvatarClient(server.url, api_key=KEYS["alice"])
        await c.connect(avatar="anna")
        await asyncio.wait_for(c.connected.wait(), 20)
        r = await c.http.delete("/avatars/anna")
        await c.close()
        return r.status_code, r.json()["detail"]

    code, detail = asyncio.run(go())
    assert code == 409 and "shown by 1 live session" in detail
    assert httpx.delete(f"{server.url}/avatars/anna", headers=as_("alice")).status_code == 204
    assert httpx.get(f"{server.url}/avatars", headers=as_("alice")).json() == []
    r = httpx.post(f"{server.url}/renders", data={"text": "Hi.", "avatar": "anna"}, headers=as_("alice"))
    assert r.status_code == 404
