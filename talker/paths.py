"""Where talker keeps its data (personas, the server's jobs and uploads) when no folder is given."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "TALKER_DATA_DIR"


def user_data_dir() -> Path:
    """``$TALKER_DATA_DIR`` when set, else ``~/.local/share/talker`` (the server's default too)."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "talker"
