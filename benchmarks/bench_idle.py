"""What a listening (idle) live session costs: server CPU with N sessions open and silent.

Starts a server (as ``bench_server`` does), connects N aiortc clients that count video frames from their
RTP packets (no decoding: a remote browser decodes, not this machine), lets them listen ``--warm``
seconds, then reads the CPU time of the server process and of its render processes from /proc over
``--seconds``. Also prints the share of frames sent, and of repeats not sent (idle frames whose image is
the one before), and of frames shown from the portrait's memo of its idle loop (``TALKER_IDLE_MEMO_MB``,
shared by the sessions): after one loop (``motion.idle.IDLE_LOOP_S``) a listening session renders
nothing. ``--memo-mb 0,96`` measures a server without the memo and one with it, one after the other.

    python -m benchmarks.bench_idle [--sessions 1,5] [--seconds 20] [--warm 3] [--memo-mb 96]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time


def _cpu(pid: int) -> tuple[float, float]:
    """(CPU seconds of ``pid`` itself, CPU seconds of its live children)."""
    from benchmarks.bench_server import _proc_stat

    tick = os.sysconf("SC_CLK_TCK")

    def secs(p: int) -> float:
        st = _proc_stat(p)
        return (int(st[11]) + int(st[12])) / tick if st else 0.0

    children = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None and int(st[1]) == pid:
                children += secs(int(entry))
    return secs(pid), children


async def measure(url: str, pid: int, n: int, seconds: float, warm: float = 3.0) -> dict[str, float]:
    from benchmarks.bench_server import connect

    clients = [await connect(url, light=True) for _ in range(n)]
    try:
        await asyncio.sleep(warm)
        before = [await c.status() for c in clients]
        main0, kids0 = _cpu(pid)
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        main1, kids1 = _cpu(pid)
        dt = time.monotonic() - t0
        after = [await c.status() for c in clients]
    finally:
        for c in clients:
            await c.close()
    sent = sum(a["frames_sent"] - b["frames_sent"] for a, b in zip(after, before))
    repeated = sum(a.get("frames_repeated", 0) - b.get("frames_repeated", 0) for a, b in zip(after, before))
    late = sum(a["frames_late"] - b["frames_late"] for a, b in zip(after, before))
    recalled = sum(a.get("frames_recalled", 0) - b.get("frames_recalled", 0) for a, b in zip(after, before))
    frames = sum(a["frames_sent"] + a.get("frames_repeated", 0) for a in after) - sum(
        b["frames_sent"] + b.get("frames_repeated", 0) for b in before
    )
    return {
        "main": (main1 - main0) / dt / n,
        "render": (kids1 - kids0) / dt / n,
        "sent_pct": 100.0 * sent / max(sent + repeated, 1),
        "late": float(late),
        "recalled_pct": 100.0 * recalled / max(frames, 1),
        "memo_mb": max(a.get("idle_memo_mb", 0.0) for a in after),  # (the portrait's, shared by its sessions)
    }


def main(argv: list[str] | None = None) -> int:
    from benchmarks import bench_server as bs
    from benchmarks.results import command_line, record

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", default="1,5", help="session counts, comma-separated")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warm", type=float, default=3.0, help="seconds the sessions listen before the measurement")
    ap.add_argument("--memo-mb", default=None, help="TALKER_IDLE_MEMO_MB values to measure, comma-separated")
    ap.add_argument("--no-record", action="store_true", help="do not append the figures to benchmarks/results.tsv")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.sessions.split(",")]
    bs.skip_video_decoding()
    lines = []
    memos: list[str | None] = args.memo_mb.split(",") if args.memo_mb else [None]
    for memo in memos:
        env = {} if memo is None else {"TALKER_IDLE_MEMO_MB": memo}
        with bs.server_process(bs.free_port(), max(counts), extra_env=env) as url:
            assert bs.SERVER_PID is not None
            for n in counts:
                m = asyncio.run(measure(url, bs.SERVER_PID, n, args.seconds, args.warm))
                line = (
                    f"{n} idle{'' if memo is None else f' (memo {memo} MB)'}: {m['main'] + m['render']:.3f} cores "
                    f"a session (server process {m['main']:.3f}, render process {m['render']:.3f}); frames sent "
                    f"{m['sent_pct']:.0f} %, the rest repeats; from the memo {m['recalled_pct']:.0f} % "
                    f"({m['memo_mb']:.0f} MB for the portrait); late {m['late']:.0f}"
                )
                print(line, flush=True)
                lines.append(line)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if not args.no_record:
        record(command_line("benchmarks.bench_idle", argv), "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
