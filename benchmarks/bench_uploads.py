"""Memory and liveness under large uploads: a server process with one live session; N concurrent uploads
of a 39-megapixel PNG (small on disk, huge decoded) and a first persona creation (the sentence-embedding
model loads then). Prints the server's peak and settled RSS and what the live session lost meanwhile.

    python -m benchmarks.bench_uploads [--uploads 20] [--pixels 39000000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

from server.testing import free_port
from tools.rtc_client import AvatarClient


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def big_png(pixels: int) -> bytes:
    w = int((pixels * 4 / 3) ** 0.5)
    h = pixels // w
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 180, 160)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


async def run(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="talker-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TALKER_JOB_WORKERS": "0", "TALKER_MAX_UPLOAD_BYTES": str(20 * 1024 * 1024)}
    cmd = [sys.executable, "-m", "talker.cli", "serve", "--port", str(port), "--data-dir", str(data)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=300) as http:
            for _ in range(600):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            png = big_png(args.pixels)
            client = AvatarClient(url)
            await client.connect()
            await asyncio.wait_for(client.connected.wait(), 30)
            await client.wait_frames(25)
            # the same session with nothing beside it first: the host's own lateness, to compare against
            quiet_before = await client.status()
            await asyncio.sleep(args.baseline_s)
            quiet_after = await client.status()
            base = rss_mb(proc.pid)
            peak = [base]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_mb(proc.pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            before = await client.status()
            frames_before = len(client.received.video)
            t0 = time.perf_counter()

            async def upload() -> int:
                r = await http.post("/portraits", files={"file": ("big.png", png, "image/png")})
                return r.status_code

            async def persona() -> int:
                r = await http.post("/personas", data={"description": "a cheerful old sea captain"})
                return r.status_code

            extra = [] if args.no_persona else [persona()]
            codes = await asyncio.gather(*(upload() for _ in range(args.uploads)), *extra)
            took = time.perf_counter() - t0
            await asyncio.sleep(2.0)
            after = await client.status()
            frames = len(client.received.video) - frames_before
            settled = rss_mb(proc.pid)
            stop.set()
            await client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    size = f"{args.pixels / 1e6:.0f}-MP PNG ({len(png) / 1024:.0f} KB)"
    print(f"{args.uploads} uploads of a {size} + 1 persona: {took:.1f} s")
    print(f"answers: {sorted(set(codes))} (uploads: no face -> 422; persona -> 201)")
    print(f"server RSS: before {base:.0f} MB, peak {peak[0]:.0f} MB (+{peak[0] - base:.0f}), after {settled:.0f} MB")
    late = after["frames_late"] - before["frames_late"]
    quiet_late = quiet_after["frames_late"] - quiet_before["frames_late"]
    quiet_sent = quiet_after["frames_sent"] - quiet_before["frames_sent"]
    sent = after["frames_sent"] - before["frames_sent"]
    nominal = round((took + 2.0) * 25)
    print(
        f"live session meanwhile ({took + 2.0:.1f} s, ~{nominal} frames at 25 fps): server sent {sent}, {late} of them "
        f"late; the client decoded {frames}"
    )
    print(f"the same session alone before ({args.baseline_s:g} s): {quiet_sent} frames sent, {quiet_late} late")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uploads", type=int, default=20)
    ap.add_argument("--pixels", type=int, default=39_000_000)
    ap.add_argument("--no-persona", action="store_true", help="uploads only, no persona beside them")
    ap.add_argument("--baseline-s", type=float, default=20.0, help="seconds of the session alone, measured first")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
