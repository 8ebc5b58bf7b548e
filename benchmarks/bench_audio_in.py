"""Benchmark of audio-driven live sessions: PCM streamed in over the session's WebSocket, the avatar's
audio and video received by an aiortc client in this process, the server in another, over loopback.

    python -m benchmarks.bench_audio_in --trials 10                  # starts a server per buffer setting
    python -m benchmarks.bench_audio_in --trials 10 --buffer-ms 40,120
    python -m benchmarks.bench_audio_in --trials 12 --model motion/assets/lipsync:80 \
        --model MY_MODEL:120,80                        # a model folder and its buffer settings, each

Each trial is one utterance: the first 2.5 s of a real recording, sent in 20 ms messages at real time
(each when its last sample would exist, as a microphone or a streaming TTS sends), opened with
``{"type": "start"}`` and closed with ``{"type": "end"}``. The speech onset is the first 10 ms of the
recording whose RMS passes a tenth of its loudest 10 ms and stays over it for 50 ms. Figures, from that
onset's moment:

* first mouth movement: the first received frame whose debug marker says the lips are apart
  (complete at the client = its last RTP packet arrived, as a browser decodes it; and decoded by aiortc);
* first sound: the first RTP audio packet of the echoed speech that is loud (half the onset's level);
* mouth - sound: how far the first mouth movement trails (or leads) the first loud sound at the client;
* the model's own: the first frame whose lips part in the same model's whole-file output of the clip
  (``motion.audio_motion``, frame k showing the audio from k / 25 s), from the onset: how late the
  sound's content opens the mouth (a closed-lip consonant first keeps it shut); first mouth movement
  minus that is the time the live path adds;
* A/V offset: video frame k against the debug beep at frame k's first sample, by RTP arrival, over
  all trials (``benchmarks.bench_server.av_offsets``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audio.io import load_audio
from benchmarks.bench_server import av_offsets, connect, pct, server_process
from benchmarks.results import command_line, record
from server.testing import free_port
from tools.rtc_client import AvatarClient

CLIPS = (
    "librivox_ss01_0870",
    "librivox_ss01_0880",
    "librivox_ss01_0890",
    "jfk_inaugural_1961",
    "goforward",
    "forever_input2",
)
SPEECH_DIRS = (Path(__file__).resolve().parents[1] / "tests" / "data" / "media" / "speech",)
CLIP_S = 2.5
CHUNK_S = 0.02


@dataclass
class Trial:
    clip: str
    mouth_complete_ms: float | None
    mouth_decoded_ms: float | None
    sound_rtp_ms: float | None
    model_ms: float | None = None


@dataclass
class Run:
    buffer_ms: int
    trials: list[Trial] = field(default_factory=list)
    av_offset_ms: list[float] = field(default_factory=list)
    frames_late: int = 0
    frames_sent: int = 0

    def summary(self) -> str:
        lines = [f"buffer {self.buffer_ms} ms ({len(self.trials)} utterances):"]

        def stat(name: str, xs: list[float | None]) -> None:
            got = [x for x in xs if x is not None]
            missing = len(xs) - len(got)
            if got:
                lines.append(
                    f"  {name}: p50 {pct(got, 50):.0f} ms, p95 {pct(got, 95):.0f} ms, min {min(got):.0f}, "
                    f"max {max(got):.0f} (n={len(got)}{f', {missing} never' if missing else ''})"
                )

        t = self.trials
        stat("speech onset -> first mouth movement complete at the client", [x.mouth_complete_ms for x in t])
        stat("speech onset -> first mouth movement decoded", [x.mouth_decoded_ms for x in t])
        stat("speech onset -> first loud audio packet", [x.sound_rtp_ms for x in t])
        stat("speech onset -> the model's own first mouth movement (whole file)", [x.model_ms for x in t])
        stat(
            "first mouth movement (complete) - the model's own (the live path)",
            [
                x.mouth_complete_ms - x.model_ms if x.mouth_complete_ms is not None and x.model_ms is not None else None
                for x in t
            ],
        )
        stat(
            "first mouth movement (complete) - first loud audio packet",
            [
                x.mouth_complete_ms - x.sound_rtp_ms
                if x.mouth_complete_ms is not None and x.sound_rtp_ms is not None
                else None
                for x in t
            ],
        )
        if self.av_offset_ms:
            off = np.abs(np.asarray(self.av_offset_ms))
            lines.append(
                f"  A/V offset (video - audio, RTP arrival): median {np.median(self.av_offset_ms):+.1f} ms, "
                f"p95 |offset| {np.percentile(off, 95):.1f} ms (n={len(off)})"
            )
        lines.append(f"  frames late at the server: {self.frames_late} of {self.frames_sent}")
        return "\n".join(lines)


def load_clip(name: str) -> tuple[np.ndarray, int]:
    for d in SPEECH_DIRS:
        path = d / f"{name}.wav"
        if path.exists():
            x, sr = load_audio(str(path))
            return np.round(x[: int(CLIP_S * sr)] * 32767).astype(np.int16), sr
    raise FileNotFoundError(f"{name}.wav is in none of {', '.join(map(str, SPEECH_DIRS))}")


def onset(pcm: np.ndarray, sr: int) -> tuple[int, float]:
    """(sample of the speech onset, RMS of its 10 ms window, 0..1): the first 10 ms window over a tenth
    of the loudest that starts 50 ms all over it (a click before the speech is not its onset)."""
    w = sr // 100
    env = np.sqrt(np.mean((pcm[: len(pcm) // w * w].reshape(-1, w) / 32768.0) ** 2, axis=1))
    above = env > 0.1 * env.max()
    i = next(i for i in range(len(env) - 4) if above[i : i + 5].all())
    return i * w, float(env[i])


@functools.cache
def _model(folder: str | None) -> Any:
    from motion.lipsync import LipsyncModel

    return LipsyncModel.load(folder)


def model_opening_ms(pcm: np.ndarray, sr: int, first: int, fps: float = 25.0) -> float | None:
    """When the lips first part in the lip-sync model's whole-file output of ``pcm``, from sample ``first``
    (ms; the model the server loads: ``TALKER_LIPSYNC_MODEL`` or the bundled one)."""
    from motion.audio_motion import audio_motion
    from server.markers import lips_apart

    rows = audio_motion(_model(os.environ.get("TALKER_LIPSYNC_MODEL")), pcm / 32768.0, sr, fps)
    k = next((i for i, row in enumerate(rows) if lips_apart(row)), None)
    return None if k is None else (k / fps - first / sr) * 1000.0


async def trial(c: AvatarClient, name: str) -> Trial:
    pcm, sr = load_clip(name)
    first, level = onset(pcm, sr)
    own = model_opening_ms(pcm, sr, first)
    sock = await c.open_audio(sr)
    v0, a0 = len(c.received.video), len(c.received.audio)
    await sock.control("start")
    await sock.next_message()
    t0 = await sock.stream(pcm, sr, CHUNK_S)
    await sock.control("end")
    await asyncio.sleep(1.5)
    await sock.close()
    t_speech = t0 + first / sr
    opened = [v for v in c.received.video[v0:] if v.marker and v.marker.mouth_open]
    loud = [a for a in c.received.audio[a0:] if a.beep is None and a.rms > 0.5 * level and a.rtp_t is not None]
    ms = 1000.0
    return Trial(
        name,
        (opened[0].complete_t - t_speech) * ms if opened else None,
        (opened[0].t - t_speech) * ms if opened else None,
        (loud[0].rtp_t - t_speech) * ms if loud and loud[0].rtp_t is not None else None,
        own,
    )


async def run(url: str, buffer_ms: int, trials: int) -> Run:
    out = Run(buffer_ms)
    c = await connect(url)
    try:
        for i in range(trials):
            out.trials.append(await trial(c, CLIPS[i % len(CLIPS)]))
            await asyncio.sleep(0.5)
        st = await c.status()
        out.frames_late, out.frames_sent = st["frames_late"], st["frames_sent"]
    finally:
        await c.close()
    out.av_offset_ms = av_offsets(c)[0]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_audio_in", description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=10, help="utterances streamed per buffer setting")
    ap.add_argument("--buffer-ms", default="80", help="TALKER_AUDIO_IN_BUFFER_MS values, comma-separated (default 80)")
    ap.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="DIR:BUFFERS",
        help="a lip-sync model folder and its buffer settings, e.g. motion/assets/lipsync:120 (repeatable; "
        "default: the server's model with --buffer-ms)",
    )
    ap.add_argument("--url", help="a running server (TALKER_DEBUG_MARKERS=1); --buffer-ms is then only a label")
    ap.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.tsv")
    args = ap.parse_args(argv)
    lines = [f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"]
    settings = [(None, args.buffer_ms)] if not args.model else [tuple(m.rsplit(":", 1)) for m in args.model]
    for model, buffers in settings:
        if model is not None:
            os.environ["TALKER_LIPSYNC_MODEL"] = model
            lines.append(f"lip-sync model {model}")
            print(lines[-1], flush=True)
        for b in (int(x) for x in buffers.split(",")):
            t_start = time.perf_counter()
            if args.url:
                res = asyncio.run(run(args.url, b, args.trials))
            else:
                os.environ["TALKER_AUDIO_IN_BUFFER_MS"] = str(b)
                with server_process(free_port(), 1) as url:
                    res = asyncio.run(run(url, b, args.trials))
            print(res.summary(), f"({time.perf_counter() - t_start:.0f} s)", flush=True)
            lines.append(res.summary())
    lines.append(f"load average {os.getloadavg()[0]:.2f} at the end")
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        print(f"recorded in {record(command_line('benchmarks.bench_audio_in', argv), text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
