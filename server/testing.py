"""Helpers for tests and benchmarks: shared loaded models, and the app served on a real port."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from typing import Any

import uvicorn

from server.app import KEEP_ALIVE_S, create_app
from server.engine import Engine
from server.settings import Settings


@functools.lru_cache(maxsize=1)
def shared_engine(size: int = 512) -> Engine:
    """One loaded engine per process (loading the voice and detector takes a few seconds)."""
    engine = Engine(tts_threads=1)
    engine.load((size, size))
    return engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``create_app(settings)`` served by uvicorn in a background thread (its own event loop)."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.app = create_app(settings, engine=engine)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())
        self.loop.close()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        t_end = time.monotonic() + 60
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > t_end:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=60)

    def call(self, fn: Any, *args: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine function on the server's event loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(timeout)

    @property
    def state(self) -> Any:
        return self.app.state.talker
