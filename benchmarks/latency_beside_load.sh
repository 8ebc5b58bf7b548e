#!/usr/bin/env bash
# Say/interrupt latency of one session beside N light sessions in the conversation pattern.
# Usage: benchmarks/latency_beside_load.sh N [PORT]   (env TALKER_* settings pass on to the server, e.g. TALKER_RENDER_NICE=4)
# The load clients run at nice 12 so that they take the CPU the server leaves; the measured client does not.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
PORT=${2:-8765}
URL=http://127.0.0.1:$PORT
DATA=$(mktemp -d)
LOAD=$(mktemp)
TALKER_DEBUG_MARKERS=1 TALKER_MAX_SESSIONS=12 TALKER_JOB_WORKERS=0 TALKER_IDLE_TIMEOUT_S=3600 \
  TALKER_ADMIT_MAX_LATE_PCT=0 TALKER_DATA_DIR=$DATA \
  .venv/bin/python -m server --port "$PORT" --log-level warning >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA" "$LOAD"' EXIT
for _ in $(seq 60); do curl -s -o /dev/null "$URL/health" && break; sleep 1; done
nice -n 12 .venv/bin/python -m benchmarks.bench_server --url "$URL" --says 0 --interrupts 0 --av-minutes 0 \
  --max-sessions "$N" --capacity-from "$N" --capacity-seconds 200 --capacity-light --capacity-pattern conversation \
  --capacity-warm 42 --no-record >"$LOAD" 2>&1 &
LOADER=$!
sleep 60  # the load sessions open and warm their portraits' idle loops
echo "load average at start: $(cut -d' ' -f1 /proc/loadavg)"
.venv/bin/python -m benchmarks.bench_server --url "$URL" --says 20 --interrupts 10 --av-minutes 0 --max-sessions 0 \
  --no-record 2>&1 | grep -v "^W0000" | tail -12
wait $LOADER
grep "capacity N" "$LOAD" | tail -1
