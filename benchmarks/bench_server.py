# Over 400 lines: one benchmark run, whose five measurements share one server and one client.
"""Benchmark of the live session server, measured from another process over loopback.

    python -m benchmarks.bench_server                 # starts a server subprocess, runs everything
    python -m benchmarks.bench_server --url http://127.0.0.1:8000   # a running server (TALKER_DEBUG_MARKERS=1)

The server stamps debug markers (frame index + speaking bit in the video, a 10 ms beep every second
in the audio) so the receiving aiortc client can tell what each frame is. Figures:

* say -> first frame of speech received (decoded by the client), p50 / p95 over ``--says`` trials
* interrupt -> first idle frame received, p50 / p95
* A/V offset at the receiver: arrival of video frame k minus arrival of the beep at frame k's first
  sample, per second over ``--av-minutes`` (from the first RTP packet of each, i.e. before the
  client's jitter buffers); p95 of |offset| and its drift (linear fit, ms per minute)
* capacity: N concurrent 25 fps sessions for ``--capacity-seconds``; frames late or skipped at the
  server and frames missing at the client, per N (a repeat, a frame whose image is the one before, is
  not sent: the server counts those, and they are not missing). ``--capacity-pattern continuous`` (default): every
  session speaks all the time (a new reply is queued 3 s after the last became audible, before it
  ends); ``conversation``: each session speaks a two-sentence reply, then listens for
  ``--capacity-listen`` seconds (the user's turn) before the next one. The share of audio frames
  that carried speech is reported with each step. ``--capacity-warm S``: one session listens S seconds
  first, so the steps run on a server that has its portrait's idle loop in memory (41 s: all of it).
* chat (``--chat N``): a persona session whose chat endpoint is a local OpenAI-compatible SSE server in
  this process (``tools.fakechat``, tokens at a model-like pace); from the moment the endpoint sends
  the last token of the reply's first sentence to the first speech frame (and first audible audio)
  received by the client, p50 / p90. Both times are on this process's ``time.perf_counter``.

    python -m benchmarks.bench_server --chat 10 --says 0 --interrupts 0 --av-minutes 0 --max-sessions 0

* video avatar (``--avatar CLIP``): the clip is uploaded (``POST /avatars``) and prepared by the server
  first (preparation time and size reported); then the say, interrupt and A/V figures are measured on
  portrait sessions and on sessions with the video avatar, alternated (portrait, avatar, portrait,
  avatar: half the trials each time), with the frames each session sent late (the previous image
  again) and the frames missing at the client.

    python -m benchmarks.bench_server --avatar ../shared/media/video/hdtf_WDA_KatieHill_000.mp4 --max-sessions 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np

from benchmarks.results import command_line, record
from server.testing import free_port
from tools.rtc_client import AvatarClient

SENTENCES = [
    "Hello there.",
    "How are you today?",
    "Nice to meet you, my friend.",
    "Papa bought a map.",
    "The weather is lovely this morning.",
    "Let me think about that.",
    "That is a very good question.",
    "I will be right back.",
]
LONG = (
    "This is a long answer, with several clauses, that goes on for a while; it is meant to be cut off "
    "in the middle, so that we can see how quickly the avatar stops talking and returns to rest."
)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


@dataclass
class Report:
    machine: str = ""
    say_first_frame_ms: list[float] = field(default_factory=list)
    say_first_packet_ms: list[float] = field(default_factory=list)
    say_first_audio_ms: list[float] = field(default_factory=list)
    interrupt_idle_ms: list[float] = field(default_factory=list)
    interrupt_idle_complete_ms: list[float] = field(default_factory=list)
    say_first_complete_ms: list[float] = field(default_factory=list)
    av_offset_ms: list[float] = field(default_factory=list)  # RTP arrival, video - audio
    av_offset_decoded_ms: list[float] = field(default_factory=list)
    av_offset_t_s: list[float] = field(default_factory=list)
    capacity: list[dict[str, Any]] = field(default_factory=list)
    chat_first_frame_ms: list[float] = field(default_factory=list)
    chat_first_packet_ms: list[float] = field(default_factory=list)
    chat_first_audio_ms: list[float] = field(default_factory=list)
    chat_first_token_ms: list[float] = field(default_factory=list)  # POST /chat -> first token sent
    server_metrics: dict[str, float] = field(default_factory=dict)
    rss_mb_by_minute: list[float] = field(default_factory=list)  # server memory each minute of the A/V session
    frames_sent: int = 0  # by the latency and A/V sessions, as the server counts
    frames_late: int = 0  # of those, sent late (the previous image again)
    frames_missing: int = 0  # frame indices never received by the client
    avatar: dict[str, Any] = field(default_factory=dict)  # the video avatar's preparation (--avatar)

    def summary(self) -> str:
        lines = [f"machine: {self.machine}"]

        def stat(name: str, xs: list[float]) -> None:
            if xs:
                lines.append(
                    f"{name}: p50 {pct(xs, 50):.0f} ms, p95 {pct(xs, 95):.0f} ms, "
                    f"min {min(xs):.0f}, max {max(xs):.0f} (n={len(xs)})"
                )

        if self.avatar:
            a = self.avatar
            lines.append(
                f"video avatar {a['source']} prepared by the server in {a['prepare_s']:.1f} s "
                f"(upload to ready {a['wall_s']:.1f} s): loop {a['loop_s']:.1f} s of {a['frames']} frames at "
                f"{a['width']}x{a['height']} {a['fps']:g} fps, {a['mouths']} mouths kept, "
                f"{a['bytes'] / 1e6:.1f} MB on disk" + (f"; notes: {' / '.join(a['notes'])}" if a.get("notes") else "")
            )
        if self.frames_sent:
            lines.append(
                f"frames sent late at the server: {self.frames_late} of {self.frames_sent} "
                f"({100 * self.frames_late / self.frames_sent:.2f} %); missing at the client: {self.frames_missing}"
            )
        if self.server_metrics.get("server_wall_s"):
            m = self.server_metrics
            lines.append(f"server CPU while one such session ran: {m['server_cpu_s'] / m['server_wall_s']:.2f} cores")
        stat("say -> first speech frame decoded", self.say_first_frame_ms)
        stat("say -> first packet of that frame", self.say_first_packet_ms)
        stat("say -> first audible audio decoded", self.say_first_audio_ms)
        stat("say -> that frame complete at the client", self.say_first_complete_ms)
        stat("interrupt -> first idle frame decoded", self.interrupt_idle_ms)
        stat("interrupt -> that frame complete at the client", self.interrupt_idle_complete_ms)
        if "speech_gaps_in_says" in self.server_metrics:
            lines.append(
                f"streamed sentences that paused between their pieces: {self.server_metrics['speech_gaps_in_says']:.0f}"
                f" of {len(self.say_first_frame_ms)}"
            )

        def stat90(name: str, xs: list[float]) -> None:
            if xs:
                lines.append(
                    f"{name}: p50 {pct(xs, 50):.0f} ms, p90 {pct(xs, 90):.0f} ms, "
                    f"min {min(xs):.0f}, max {max(xs):.0f} (n={len(xs)})"
                )

        stat90("chat: first sentence sent by the endpoint -> first speech frame decoded", self.chat_first_frame_ms)
        stat90("chat: first sentence sent -> first RTP packet of that frame", self.chat_first_packet_ms)
        stat90("chat: first sentence sent -> first audible audio decoded", self.chat_first_audio_ms)
        stat90("chat: POST /chat -> first token sent by the endpoint", self.chat_first_token_ms)
        if self.av_offset_ms:
            off = np.asarray(self.av_offset_ms)
            t = np.asarray(self.av_offset_t_s)
            slope = float(np.polyfit(t / 60.0, off, 1)[0]) if len(off) > 2 else float("nan")
            minute = 60.0
            first = off[t < t[0] + minute]
            last = off[t > t[-1] - minute]
            lines.append(
                f"A/V offset (video - audio, RTP arrival): median {np.median(off):+.1f} ms, "
                f"p95 |offset| {np.percentile(np.abs(off), 95):.1f} ms, drift {slope:+.2f} ms/min over "
                f"{(t[-1] - t[0]) / 60:.1f} min (first minute mean {first.mean():+.1f}, last {last.mean():+.1f}; "
                f"n={len(off)})"
            )
        if self.av_offset_decoded_ms:
            d = np.asarray(self.av_offset_decoded_ms)
            lines.append(
                f"A/V offset after the aiortc client's jitter buffers: median {np.median(d):+.1f} ms, "
                f"p95 |offset| {np.percentile(np.abs(d), 95):.1f} ms"
            )
        sm = self.server_metrics

        def mean_ms(name: str) -> str:
            n = sm.get(f"{name}_count", 0.0)
            return f"{1000 * sm[f'{name}_sum'] / n:.0f} ms" if n else "-"

        if sm:
            lines.append(
                "server side, all phases (means): say -> first frame handed to WebRTC "
                f"{mean_ms('talker_say_first_frame_seconds')}, interrupt -> idle frame "
                f"{mean_ms('talker_interrupt_idle_seconds')}, TTS piece {mean_ms('talker_tts_piece_seconds')}, "
                f"TTS first audio {mean_ms('talker_tts_first_audio_seconds')}, "
                f"render {mean_ms('talker_render_frame_seconds')}"
            )
        if self.rss_mb_by_minute:
            r = self.rss_mb_by_minute
            lines.append(f"server memory each minute of the A/V session: {', '.join(f'{x:.0f}' for x in r)} MiB")
            if len(r) > 2:
                lines.append(f"  from minute 2 to the end: {100 * (r[-1] - r[1]) / r[1]:+.1f} %")
        if "load_frames_shown" in self.server_metrics:
            m = self.server_metrics
            lines.append(
                f"sessions beside the A/V one: {m['load_frames_late']:.0f} of {m['load_frames_shown']:.0f} frames late "
                f"({100 * m['load_frames_late'] / max(m['load_frames_shown'], 1):.2f} %)"
            )
        if "rss_mb_end_of_av_session" in self.server_metrics:
            m = self.server_metrics
            lines.append(
                f"server memory over the A/V session: {m['rss_mb_start_of_av_session']:.0f} -> "
                f"{m['rss_mb_end_of_av_session']:.0f} MiB"
            )
        for c in self.capacity:
            lines.append(
                f"capacity N={c['sessions']}: server late {c['late_pct']:.2f}% skipped {c['skipped_pct']:.2f}%, "
                f"client missing {c['missing_pct']:.2f}%, repeats not sent {c.get('repeated_pct', 0):.1f}%, "
                f"received {c['fps_min']:.1f}-{c['fps_max']:.1f} fps, "
                + ("say->first audio" if c.get("client", "").startswith("light") else "say->first frame")
                + f" p50 {c['say_p50_ms']:.0f} ms, speech gaps {c.get('speech_gaps', 0)}"
                + (f", {c['pattern']} (speech in {100 * c['speaking_share']:.0f}% of audio)" if "pattern" in c else "")
                + (
                    f", server CPU {c['server_cores_per_session']:.2f} cores/session, "
                    f"client ({c.get('client', 'decoding')}) {c.get('client_cores') or 0:.2f} cores"
                    if c.get("server_cores_per_session")
                    else ""
                )
            )
        if self.capacity:
            ok = [c["sessions"] for c in self.capacity if c["dropped_pct"] <= 1.0]
            strict = [c["sessions"] for c in self.capacity if c["dropped_pct"] == 0.0]
            best = max(ok) if ok else 0
            lines.append(f"max sessions with <=1% frames dropped: {best}; with none: {max(strict) if strict else 0}")
        return "\n".join(lines)


SERVER_PID: int | None = None


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process and its live children (render processes), from /proc."""
    if pid is None:
        return None
    procs = {pid}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None and int(st[1]) == pid:
                procs.add(int(entry))
    total = 0
    for p in procs:
        st = _proc_stat(p)
        if st is not None:
            total += int(st[11]) + int(st[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process in MiB."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextmanager
def server_process(port: int, max_sessions: int, job_workers: int = 0, extra_env: dict[str, str] | None = None) -> Any:
    env = dict(os.environ)
    env.update(
        {
            "TALKER_DEBUG_MARKERS": "1",
            "TALKER_MAX_SESSIONS": str(max_sessions),
            "TALKER_JOB_WORKERS": str(job_workers),
            "TALKER_IDLE_TIMEOUT_S": "3600",
            "TALKER_ADMIT_MAX_LATE_PCT": "0",  # capacity steps go past where the server would refuse sessions
            "TALKER_DATA_DIR": tempfile.mkdtemp(prefix="talker-bench-"),
            **(extra_env or {}),
        }
    )
    cmd = [sys.executable, "-m", "server", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    global SERVER_PID
    SERVER_PID = proc.pid
    url = f"http://127.0.0.1:{port}"
    try:
        t_end = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > t_end:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def connect(url: str, light: bool = False, avatar: str | None = None) -> AvatarClient:
    """A connected client that has received 10 video frames (``light``: counted from RTP packets);
    ``avatar``: a session with that video avatar."""
    c = AvatarClient(url, decode_markers=True)
    await c.connect(avatar=avatar)
    await asyncio.wait_for(c.connected.wait(), 30)
    if light:
        if not await wait_for(lambda: len(c.video_frames_complete()) >= 10, 30):
            raise RuntimeError("no video packets after 30 s")
    else:
        await c.wait_frames(10, timeout=30)
    return c


async def wait_for(pred: Any, timeout: float) -> bool:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return True
        await asyncio.sleep(0.002)
    return False


async def wait_quiet(c: AvatarClient, quiet_s: float = 0.4, timeout: float = 30.0) -> None:
    """Until the last ``quiet_s`` of received frames are all idle."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        await asyncio.sleep(0.1)
        now = time.perf_counter()
        recent = [v for v in c.received.video if v.t > now - quiet_s and v.marker]
        if len(recent) >= 5 and not any(v.marker.speaking for v in recent if v.marker):
            st = await c.status()
            if not st["speaking"]:
                return


async def one_say(c: AvatarClient, text: str) -> tuple[float, float | None, float | None, float]:
    n0, a0 = len(c.received.video), len(c.received.audio)
    t0 = time.perf_counter()
    r = await c.say(text)
    r.raise_for_status()

    def speaking() -> Any:
        return next((v for v in c.received.video[n0:] if v.marker and v.marker.speaking), None)

    if not await wait_for(lambda: speaking() is not None, 20):
        raise RuntimeError(f"no speech after saying {text!r}")
    v = speaking()
    assert v is not None
    await asyncio.sleep(0.3)
    audible = next((a for a in c.received.audio[a0:] if a.t > t0 and a.speech), None)
    return (
        (v.t - t0) * 1000,
        (v.rtp_t - t0) * 1000 if v.rtp_t is not None else None,
        (audible.t - t0) * 1000 if audible else None,
        (v.complete_t - t0) * 1000,
    )


async def count_frames(c: AvatarClient, rep: Report) -> None:
    """Add a session's sent, late and missing frames to the report (before it closes)."""
    st = await c.status()
    rep.frames_sent += st["frames_sent"]
    rep.frames_late += st["frames_late"]
    idx = [v.marker.index for v in c.received.video if v.marker]
    if idx:
        steps = np.diff(np.asarray(idx)) % 65536
        # (a repeat, a frame whose image is the one before, is not sent: not missing)
        gaps = int(np.clip(steps - 1, 0, None)[steps < 1000].sum())
        rep.frames_missing += max(0, gaps - st.get("frames_repeated", 0))


async def bench_latency(url: str, rep: Report, says: int, interrupts: int, avatar: str | None = None) -> None:
    c = await connect(url, avatar=avatar)
    try:
        await asyncio.sleep(1.0)
        for i in range(says):
            frame_ms, packet_ms, audio_ms, complete_ms = await one_say(c, SENTENCES[i % len(SENTENCES)])
            rep.say_first_frame_ms.append(frame_ms)
            rep.say_first_complete_ms.append(complete_ms)
            if packet_ms is not None:
                rep.say_first_packet_ms.append(packet_ms)
            if audio_ms is not None:
                rep.say_first_audio_ms.append(audio_ms)
            await wait_quiet(c)
            await asyncio.sleep(random.uniform(0.1, 0.5))
        if says:
            rep.server_metrics["speech_gaps_in_says"] = float((await c.status()).get("speech_gaps", 0))
        for _ in range(interrupts):
            await one_say(c, LONG)
            await asyncio.sleep(random.uniform(0.5, 1.2))
            n0 = len(c.received.video)
            t0 = time.perf_counter()
            (await c.interrupt()).raise_for_status()

            def idle(n0: int = n0) -> Any:
                return next((v for v in c.received.video[n0:] if v.marker and not v.marker.speaking), None)

            if await wait_for(lambda: idle() is not None, 5):
                v = idle()
                assert v is not None
                rep.interrupt_idle_ms.append((v.t - t0) * 1000)
                rep.interrupt_idle_complete_ms.append((v.complete_t - t0) * 1000)
            await wait_quiet(c)
            await asyncio.sleep(random.uniform(0.1, 0.5))
        await count_frames(c, rep)
    finally:
        await c.close()


def av_offsets(c: AvatarClient, fps: int = 25, spf: int = 1920) -> tuple[list[float], list[float], list[float]]:
    """(offset ms by RTP arrival, offset ms after decoding, time s) for every beep matched to its frame."""
    # the beep starts the audio packet of frame k; after decoding it sits ~6.5 ms into the frame
    # (Opus delay), so the decoded frame's pts (= its packet's) identifies it
    candidates = [a for a in c.received.audio if a.beep is not None]
    # loud speech can pass for a beep: true beeps are exactly 1 s (48000 samples) apart, so they
    # share one residue of pts modulo 48000
    residues = [a.pts % (spf * fps) for a in candidates]
    if not residues:
        return [], [], []
    true_residue = max(set(residues), key=residues.count)
    beeps = [a for a, r in zip(candidates, residues) if r == true_residue]
    by_index: dict[int, Any] = {}
    for v in c.received.video:
        if v.marker and v.marker.index % fps == 0:
            by_index.setdefault(v.marker.index, v)
    if not beeps or not by_index:
        return [], [], []
    # beep j is at frame k0 + (its pts - the first beep's pts) / spf; k0 is the marked frame that
    # makes the offsets smallest overall (beeps are 1 s apart, so a wrong k0 is off by >= 1 s)
    b0 = beeps[0]

    def pair(k0: int) -> tuple[list[float], list[float], list[float]]:
        out_rtp, out_dec, ts = [], [], []
        for b in beeps:
            k = k0 + round(((b.pts - b0.pts) % 2**32) / spf)
            v = by_index.get(k % 65536)
            if v is None:
                continue
            out_dec.append((v.t - b.t) * 1000)
            if v.rtp_t is not None and b.rtp_t is not None:
                out_rtp.append((v.rtp_t - b.rtp_t) * 1000)
                ts.append(b.t)
        return out_rtp, out_dec, ts

    # (the first beep's own frame may be missing at the client: frames a whole number of seconds from the
    # received ones are candidates too)
    near = [k for k in by_index if abs(by_index[k].t - b0.t) < 3.0] or list(by_index)
    starts = {(k + fps * m) % 65536 for k in near for m in range(-3, 4)}
    # (chosen by the packets' arrival: a client that decodes late shifts the decoded offsets by a second)
    best = min(starts, key=lambda k: float(np.median(np.abs(pair(k)[0] or pair(k)[1] or [1e9]))))
    return pair(best)


async def bench_av(url: str, rep: Report, minutes: float, avatar: str | None = None, load: int = 0) -> None:
    """The A/V session: a reply every 8 s for ``minutes``. ``load``: that many more sessions beside it (light
    clients, a reply then listening), and the server's memory sampled each minute."""
    c = await connect(url, avatar=avatar)
    others: list[AvatarClient] = []
    if load:
        skip_video_decoding()  # (after the A/V client's decoder exists: it keeps decoding)
        others = [await connect(url, light=True) for _ in range(load)]
    rss0 = rss_mb(SERVER_PID)
    frames: list[Any] = []
    stop = asyncio.Event()

    async def converse(o: AvatarClient, delay: float) -> None:
        await asyncio.sleep(delay)
        j = 0
        while not stop.is_set():
            await o.say(SENTENCES[j % len(SENTENCES)] + " " + SENTENCES[(j + 2) % len(SENTENCES)])
            j += 1
            try:
                await asyncio.wait_for(stop.wait(), 9.0)  # about 5 s of reply, then listening
            except TimeoutError:
                pass

    talkers = [asyncio.create_task(converse(o, 1.3 * k)) for k, o in enumerate(others)]
    rss_by_minute: list[float] = []
    try:
        t_start = time.monotonic()
        t_end = t_start + minutes * 60
        i = 0
        while time.monotonic() < t_end:
            await c.say(SENTENCES[i % len(SENTENCES)] + " " + SENTENCES[(i + 3) % len(SENTENCES)])
            i += 1
            await asyncio.sleep(min(8.0, max(0.0, t_end - time.monotonic())))
            # keep memory bounded on long runs: offsets only need markers and beeps
            frames += [v for v in c.received.video if v.marker]
            c.received.video = [v for v in c.received.video if v.marker and v.marker.index % 25 == 0]
            if len(rss_by_minute) < (time.monotonic() - t_start) // 60:
                rss_by_minute.append(rss_mb(SERVER_PID) or 0.0)
        st = await c.status()
        rep.frames_sent += st["frames_sent"]
        rep.frames_late += st["frames_late"]
        for o in others:
            so = await o.status()
            rep.server_metrics["load_frames_late"] = rep.server_metrics.get("load_frames_late", 0) + so["frames_late"]
            rep.server_metrics["load_frames_shown"] = (
                rep.server_metrics.get("load_frames_shown", 0) + so["frames_sent"] + so.get("frames_repeated", 0)
            )
    finally:
        stop.set()
        await asyncio.gather(*talkers, return_exceptions=True)
        for o in others:
            await o.close()
        await c.close()
    rep.rss_mb_by_minute += rss_by_minute
    rss1 = rss_mb(SERVER_PID)
    if rss0 is not None and rss1 is not None:
        rep.server_metrics["rss_mb_start_of_av_session"] = rss0
        rep.server_metrics["rss_mb_end_of_av_session"] = rss1
    idx = sorted({v.marker.index for v in frames if v.marker})
    if idx:
        rep.frames_missing += max(0, (idx[-1] - idx[0] + 1) - len(idx) - st.get("frames_repeated", 0))
    off, dec, ts = av_offsets(c)
    t0 = ts[0] if ts else 0.0
    rep.av_offset_ms += off
    rep.av_offset_decoded_ms += dec
    rep.av_offset_t_s += [t - t0 for t in ts]


def skip_video_decoding() -> None:
    """For ``--capacity-light``: this process stops decoding video (process-wide; call it last).

    The capacity figure is the server's, but the receiving clients share its 2 cores here, and decoding
    N streams of 512x512 VP8 costs this process ~0.15 cores each (measured), capacity a remote browser
    would not take from the server. Light clients count frames from their RTP packets instead: a frame
    has arrived when its last packet (marker bit) has; gaps in the RTP timestamps are missing frames.
    Speech is detected in the (still decoded) audio.
    """
    import aiortc.rtcrtpreceiver as receiver
    from aiortc.codecs.base import Decoder

    class _Count(Decoder):
        def decode(self, encoded_frame: Any) -> list[Any]:
            return []

    original = receiver.get_decoder
    receiver.get_decoder = lambda codec: _Count() if codec.mimeType.lower().startswith("video/") else original(codec)


async def say_light(c: AvatarClient, text: str) -> float:
    """say -> first audible audio decoded (ms), for light clients."""
    a0 = len(c.received.audio)
    t0 = time.perf_counter()
    (await c.say(text)).raise_for_status()

    def audible() -> Any:
        return next((a for a in c.received.audio[a0:] if a.speech), None)

    if not await wait_for(lambda: audible() is not None, 20):
        raise RuntimeError(f"no speech after saying {text!r}")
    a = audible()
    assert a is not None
    return (a.t - t0) * 1000


async def wait_silent(c: AvatarClient, timeout: float = 60.0) -> None:
    """Until the session reports that it is no longer speaking."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if not (await c.status())["speaking"]:
            return
        await asyncio.sleep(0.2)


async def bench_capacity(
    url: str,
    rep: Report,
    max_n: int,
    seconds: float,
    light: bool = False,
    pattern: str = "continuous",
    listen_s: float = 3.0,
    min_n: int = 1,
) -> None:
    for n in range(min_n, max_n + 1):
        clients = await asyncio.gather(*(connect(url, light) for _ in range(n)))
        try:
            before = [await c.status() for c in clients]
            a0 = [len(c.received.audio) for c in clients]
            m0 = [len(c.received.video) for c in clients]
            r0 = [len(c.video_frames_complete()) for c in clients]
            cpu0 = cpu_seconds(SERVER_PID)
            me0 = time.process_time()  # this process only (the server is its child)
            t0 = time.perf_counter()
            say_ms: list[float] = []
            failures: list[str] = []

            async def talk(
                c: AvatarClient,
                offset: float,
                t0: float = t0,
                say_ms: list[float] = say_ms,
                failures: list[str] = failures,
            ) -> None:
                await asyncio.sleep(offset)
                j = 0
                while time.perf_counter() - t0 < seconds - 3:
                    text = SENTENCES[j % len(SENTENCES)] + " " + SENTENCES[(j + 1) % 8]
                    try:
                        ms = await say_light(c, text) if light else (await one_say(c, text))[0]
                    except RuntimeError as e:
                        failures.append(f"{c.session_id}: {e}; status {await c.status()}")
                        return
                    say_ms.append(ms)
                    j += 1
                    if pattern == "conversation":
                        await wait_silent(c)
                        await asyncio.sleep(listen_s)
                    else:
                        await asyncio.sleep(3.0)

            await asyncio.gather(*(talk(c, i * 0.7) for i, c in enumerate(clients)))
            await asyncio.sleep(max(0.0, seconds - (time.perf_counter() - t0)))
            elapsed = time.perf_counter() - t0
            cpu1 = cpu_seconds(SERVER_PID)
            me1 = time.process_time()
            after = [await c.status() for c in clients]
            sent = sum(a["frames_sent"] - b["frames_sent"] for a, b in zip(after, before))
            gaps = sum(a.get("speech_gaps", 0) - b.get("speech_gaps", 0) for a, b in zip(after, before))
            late = sum(a["frames_late"] - b["frames_late"] for a, b in zip(after, before))
            repeats = [a.get("frames_repeated", 0) - b.get("frames_repeated", 0) for a, b in zip(after, before)]
            expected = 25.0 * elapsed * n
            missing = 0
            fps = []
            for c, m, r, rep_c in zip(clients, m0, r0, repeats):
                if light:
                    idx = c.video_frames_complete()[r:]
                    fps.append(len(idx) / elapsed)
                else:
                    idx = [v.marker.index for v in c.received.video[m:] if v.marker]
                    fps.append(len(c.received.video[m:]) / elapsed)
                distinct = len(set(idx))
                span = (max(idx) - min(idx) + 1) if idx else 0
                missing += max(0, span - distinct - rep_c)  # (repeats are not sent)
            skipped = max(0.0, expected - sent - sum(repeats))
            heard = [a for c, k in zip(clients, a0) for a in c.received.audio[k:]]
            speaking_share = sum(a.speech for a in heard) / max(1, len(heard))
            rep.capacity.append(
                {
                    "sessions": n,
                    "client": "light (RTP-level video)" if light else "decoding",
                    "pattern": pattern,
                    "speaking_share": speaking_share,
                    "seconds": elapsed,
                    "late_pct": 100.0 * late / max(sent, 1),
                    "skipped_pct": 100.0 * skipped / expected,
                    "missing_pct": 100.0 * missing / expected,
                    "repeated_pct": 100.0 * sum(repeats) / expected,
                    "dropped_pct": round(100.0 * (late + skipped + missing) / expected, 2),
                    "fps_min": min(fps),
                    "fps_max": max(fps),
                    "say_p50_ms": pct(say_ms, 50),
                    "speech_gaps": gaps,
                    "failures": failures,
                    "server_cores_per_session": (cpu1 - cpu0) / elapsed / n if cpu0 is not None and cpu1 else None,
                    "client_cores": (me1 - me0) / elapsed if me0 is not None and me1 is not None else None,
                }
            )
            print(Report(capacity=rep.capacity[-1:]).summary().splitlines()[1], failures or "", flush=True)
        finally:
            await asyncio.gather(*(c.close() for c in clients))
        await asyncio.sleep(1.0)
        if rep.capacity[-1]["dropped_pct"] > 5.0:
            break


async def bench_chat(
    url: str, rep: Report, runs: int, token_ms: float, first_token_ms: float, reply: str | None = None
) -> None:
    from benchmarks.bench_chat import DEFAULT_REPLY, first_sentence_token
    from tools.fakechat import FakeChatServer

    reply = reply or DEFAULT_REPLY
    with FakeChatServer(reply, token_delay_s=token_ms / 1000, first_token_delay_s=first_token_ms / 1000) as srv:
        async with httpx.AsyncClient(base_url=url, timeout=60) as h:
            r = await h.post(
                "/personas",
                data={
                    "description": "a cheerful old sea captain",
                    "voice_id": "piper:joe",
                    "chat_base_url": srv.base_url,
                    "chat_model": "bench",
                    "chat_api_key_env": "",
                },
            )
            r.raise_for_status()
            persona_id = r.json()["persona_id"]
        k = first_sentence_token(reply)
        c = AvatarClient(url, decode_markers=True)
        await c.connect(persona_id=persona_id)
        await asyncio.wait_for(c.connected.wait(), 30)
        await c.wait_frames(10, timeout=30)
        try:
            await asyncio.sleep(1.0)
            for _ in range(runs):
                srv.sent.clear()
                n0, a0 = len(c.received.video), len(c.received.audio)
                t0 = time.perf_counter()
                (await c.chat("Tell me about the sea.")).raise_for_status()

                def speaking(n0: int = n0) -> Any:
                    return next((v for v in c.received.video[n0:] if v.marker and v.marker.speaking), None)

                if not await wait_for(lambda: speaking() is not None and len(srv.sent) > k, 30):
                    raise RuntimeError("no speech after a chat message")
                v = speaking()
                assert v is not None
                await asyncio.sleep(0.3)
                sent = srv.sent[k][0]
                rep.chat_first_frame_ms.append((v.t - sent) * 1000)
                rep.chat_first_token_ms.append((srv.sent[0][0] - t0) * 1000)
                if v.rtp_t is not None:
                    rep.chat_first_packet_ms.append((v.rtp_t - sent) * 1000)
                audible = next((a for a in c.received.audio[a0:] if a.t > t0 and a.speech), None)
                if audible is not None:
                    rep.chat_first_audio_ms.append((audible.t - sent) * 1000)
                (await c.interrupt()).raise_for_status()
                await wait_quiet(c)
                await asyncio.sleep(random.uniform(0.2, 0.6))
        finally:
            await c.close()
            async with httpx.AsyncClient(base_url=url, timeout=30) as h:
                await h.delete(f"/personas/{persona_id}")


async def fetch_metrics(url: str, rep: Report) -> None:
    async with httpx.AsyncClient() as h:
        text = (await h.get(url + "/metrics")).text
    for line in text.splitlines():
        if line.startswith("#") or "{" in line:
            continue
        name, value = line.rsplit(" ", 1)
        if name.endswith(("_sum", "_count", "_total")):
            rep.server_metrics[name] = float(value)


async def prepare_avatar(url: str, clip: str, name: str = "bench") -> dict[str, Any]:
    """Upload ``clip`` as a video avatar and wait until the server has prepared it; its facts."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as h:
        await h.delete(f"/avatars/{name}")
        t0 = time.perf_counter()
        with open(clip, "rb") as f:
            r = await h.post("/avatars", files={"video": (os.path.basename(clip), f, "video/mp4")}, data={"name": name})
        if r.status_code != 202:
            raise RuntimeError(f"POST /avatars -> {r.status_code}: {r.text}")
        while True:
            body: dict[str, Any] = (await h.get(f"/avatars/{name}")).json()
            if body["status"] == "ready":
                body["wall_s"] = time.perf_counter() - t0
                return body
            if body["status"] not in ("queued", "preparing"):
                raise RuntimeError(f"the video avatar was not prepared: {body}")
            await asyncio.sleep(0.5)


async def run_avatar_comparison(url: str, args: argparse.Namespace) -> tuple[Report, Report]:
    """Portrait and video-avatar sessions, alternated, each with half the trials per block."""
    print(f"preparing the video avatar from {args.avatar} ...", flush=True)
    info = await prepare_avatar(url, args.avatar)
    load = f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    portrait = Report(machine=f"portrait sessions; {load}")
    video = Report(machine=f"video-avatar sessions; {load}", avatar=info)
    half = (max(1, args.says // 2), args.interrupts // 2 + args.interrupts % 2, args.av_minutes / 2)
    for block in range(2):
        for rep, avatar in ((portrait, None), (video, "bench")):
            print(f"block {block + 1}: {'video avatar' if avatar else 'portrait'} ...", flush=True)
            cpu0, t0 = cpu_seconds(SERVER_PID), time.perf_counter()
            if args.says or args.interrupts:
                await bench_latency(url, rep, half[0] if args.says else 0, half[1], avatar)
            if args.av_minutes > 0:
                await bench_av(url, rep, half[2], avatar)
            cpu1 = cpu_seconds(SERVER_PID)
            if cpu0 is not None and cpu1 is not None:
                rep.server_metrics["server_cpu_s"] = rep.server_metrics.get("server_cpu_s", 0.0) + cpu1 - cpu0
                rep.server_metrics["server_wall_s"] = (
                    rep.server_metrics.get("server_wall_s", 0.0) + time.perf_counter() - t0
                )
    await fetch_metrics(url, video)
    for rep in (portrait, video):
        rep.machine += f", {os.getloadavg()[0]:.2f} at the end"
    return portrait, video


async def run(url: str, args: argparse.Namespace) -> Report:
    rep = Report(machine=f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    if args.says or args.interrupts:
        print("latency ...", flush=True)
        await bench_latency(url, rep, args.says, args.interrupts)
        print(rep.summary(), flush=True)
    if args.av_minutes > 0:
        print(f"A/V over {args.av_minutes} min ...", flush=True)
        await bench_av(url, rep, args.av_minutes, load=args.av_load)
        print(rep.summary(), flush=True)
    if args.chat > 0:
        print("chat ...", flush=True)
        await bench_chat(url, rep, args.chat, args.token_ms, args.first_token_ms, args.chat_reply)
        print(rep.summary(), flush=True)
    if args.max_sessions > 0:
        print("capacity ...", flush=True)
        if args.client_nice:
            # the clients stand in for remote browsers: on this shared machine they yield to the server
            os.nice(args.client_nice)
            rep.machine += f", capacity clients at nice {args.client_nice}"
        if args.capacity_light:
            skip_video_decoding()
        if args.capacity_warm > 0:
            # a server that has run a while: its portrait's idle loop is in memory (IDLE_MEMO_KEEP keeps it)
            c = await connect(url, args.capacity_light)
            await asyncio.sleep(args.capacity_warm)
            await c.close()
            rep.machine += f", capacity after one session listened {args.capacity_warm:.0f} s"
        await bench_capacity(
            url,
            rep,
            args.max_sessions,
            args.capacity_seconds,
            args.capacity_light,
            args.capacity_pattern,
            args.capacity_listen,
            args.capacity_from,
        )
    await fetch_metrics(url, rep)
    rep.machine += f", {os.getloadavg()[0]:.2f} at the end"
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running server started with TALKER_DEBUG_MARKERS=1 (default: start one)")
    ap.add_argument("--says", type=int, default=20, help="say -> first frame trials")
    ap.add_argument("--interrupts", type=int, default=10, help="interrupt -> idle trials")
    ap.add_argument("--av-minutes", type=float, default=5.0, help="length of the A/V drift session")
    ap.add_argument(
        "--av-load", type=int, default=0, help="A/V: this many more sessions beside it, replying then listening"
    )
    ap.add_argument("--max-sessions", type=int, default=6, help="capacity: up to this many sessions")
    ap.add_argument("--capacity-seconds", type=float, default=20.0, help="capacity: seconds per step")
    ap.add_argument(
        "--capacity-pattern",
        choices=("continuous", "conversation"),
        default="continuous",
        help="capacity: sessions speak all the time, or reply then listen (see the module doc)",
    )
    ap.add_argument(
        "--capacity-listen", type=float, default=3.0, help="capacity, conversation: seconds of listening per turn"
    )
    ap.add_argument("--capacity-from", type=int, default=1, help="capacity: the first session count (default 1)")
    ap.add_argument(
        "--capacity-warm",
        type=float,
        default=0.0,
        help="capacity: one session listens this long first (41: its portrait's whole idle loop is in memory, as "
        "on a server that has been showing it)",
    )
    ap.add_argument(
        "--client-nice",
        type=int,
        default=0,
        help="capacity: lower this process's CPU priority by this much first (the clients then yield to the "
        "server they share the machine with, as remote clients would not compete at all)",
    )
    ap.add_argument(
        "--capacity-light",
        action="store_true",
        help="capacity: clients count video frames from RTP packets instead of decoding them (see skip_video_decoding)",
    )
    ap.add_argument("--chat", type=int, default=0, help="chat -> first speech frame trials (persona session)")
    ap.add_argument("--token-ms", type=float, default=30.0, help="chat: delay between tokens of the fake endpoint")
    ap.add_argument("--first-token-ms", type=float, default=200.0, help="chat: delay before its first token")
    ap.add_argument("--chat-reply", default=None, help="chat: the scripted reply (default: benchmarks.bench_chat's)")
    ap.add_argument(
        "--avatar",
        help="a clip to prepare as a video avatar: say, interrupt and A/V figures for portrait and video-avatar "
        "sessions, alternated (then no chat or capacity steps)",
    )
    ap.add_argument("--json", help="write the raw figures here")
    ap.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.tsv")
    args = ap.parse_args(argv)
    random.seed(0)
    reports: list[Report]
    if args.avatar:
        if args.url:
            reports = list(asyncio.run(run_avatar_comparison(args.url, args)))
        else:
            with server_process(free_port(), 2, job_workers=1) as url:
                reports = list(asyncio.run(run_avatar_comparison(url, args)))
    elif args.url:
        reports = [asyncio.run(run(args.url, args))]
    else:
        with server_process(free_port(), max(args.max_sessions, 1 + args.av_load)) as url:
            reports = [asyncio.run(run(url, args))]
    summary = "\n".join(r.summary() for r in reports)
    print(summary)
    if not args.no_record:
        print(f"recorded in {record(command_line('benchmarks.bench_server', argv), summary)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in reports] if len(reports) > 1 else asdict(reports[0]), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
