"""``python -m server``: the same as ``talker serve``."""

from __future__ import annotations

import sys

from talker.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
