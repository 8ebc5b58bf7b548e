"""The browser page drives a live session: headless Chromium connects, speaks, interrupts, disconnects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from server.testing import LiveServer, shared_engine

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]

# draws the current video frame into a small canvas and hashes it
FRAME_HASH_JS = """() => {
  const v = document.getElementById('video');
  const c = document.createElement('canvas'); c.width = 64; c.height = 64;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 64);
  const d = g.getImageData(0, 0, 64, 64).data;
  let h = 0; for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i + 1]) % 1000000007;
  return h;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


def test_page_connects_speaks_and_interrupts(browser: Any, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, job_workers=0, max_sessions=2)
    with LiveServer(settings, shared_engine()) as srv:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(srv.url + "/")
        page.wait_for_function("document.querySelectorAll('#portrait option').length >= 1")
        page.click("#connect")
        page.wait_for_function(
            "window.talker.sessionId && document.getElementById('video').readyState >= 2", timeout=30_000
        )
        sid = page.evaluate("window.talker.sessionId")
        assert sid in srv.state.manager.sessions
        assert page.evaluate("document.getElementById('video').videoWidth") == 512

        page.fill("#text", "Hello there. Papa bought a map, and the map was big.")
        page.click("#say")
        page.wait_for_function("(window.talker.stats.audioLevel || 0) > 0.02", timeout=20_000)
        hashes = set()
        for _ in range(12):
            hashes.add(page.evaluate(FRAME_HASH_JS))
            time.sleep(0.08)
        assert len(hashes) >= 6, "the video element shows changing frames"
        stats = page.evaluate("window.talker.stats")
        assert stats["framesDecoded"] > 25 and stats["fps"] >= 15
        assert stats["audioPackets"] > 50 and stats["audioBytes"] > 2000
        session = srv.state.manager.sessions[sid]
        assert session.status().speaking

        page.click("#interrupt")
        page.wait_for_function("document.getElementById('status').textContent.includes('interrupted')")
        time.sleep(0.5)
        assert not session.status().speaking

        page.click("#disconnect")
        t_end = time.monotonic() + 10
        while srv.state.manager.sessions and time.monotonic() < t_end:
            time.sleep(0.05)
        assert srv.state.manager.sessions == {}
        assert page.evaluate("window.talker.error") is None and errors == []
        page.close()
