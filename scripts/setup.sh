#!/usr/bin/env bash
# One-command install for a fresh Debian/Python 3.11 machine.
# Makes .venv, installs the CPU torch first, then the project with its test extras,
# and the Debian packages the project needs (ffmpeg libs come inside PyAV's wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

if [ "${TALKER_SKIP_APT:-0}" != "1" ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  # libgl1/libglib2.0-0: needed by the OpenCV wheel that mediapipe pulls in.
  # chromium: the real browser used by the browser-page test (driven by Playwright's client).
  # flite: an optional system voice engine; when present its voices join the voice bank.
  # haproxy, coturn: the proxy of deploy/haproxy.cfg and a TURN server, run by slow tests of deploy/.
  # postgresql: the shared store's database server, started by a slow test.
  # festival + voices: speech of real speakers with exact phone timings for the lip-sync training data
  # (English; festival-czech and its four voices for --festival-czech).
  pkgs="libgl1 libglib2.0-0 chromium flite haproxy coturn postgresql festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
  pkgs="$pkgs festival-czech festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph"
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    $SUDO apt-get update -qq || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch==2.13.0 first: that exact version is the CPU build on this machine's disk. A bare
# "torch" requirement (e.g. from face-alignment or diffusers) would otherwise pull a
# multi-GB CUDA build from PyPI.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[test]"
echo "talker installed in $VENV"
