#!/usr/bin/env bash
# HTTP load test of the release lead-server on PostgreSQL, beside the raw
# single-row INSERT baseline on the same server (issue 5; docs/perf.md).
#
#   .ci/with-postgres bash benches/load/http_load.sh
#
# REPS=8 gives the server 8 always-available reps (LEAD_REPS), so every
# capture is routed and updates a rep's workload, as in production; the
# default, REPS=0, leaves every lead unassigned.
#
# Needs wrk (apt-get install wrk). Captures are unsigned (wrk's Lua has no
# HMAC; the signature check is microseconds against a capture's
# milliseconds) and the per-IP rate limit is off.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?run through .ci/with-postgres}"
DURATION=${DURATION:-15s}
PORT=${PORT:-5099}
REPS=${REPS:-0}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p lead-server
cargo build --release -q -p lead-benches --example store_write

db="load_$(date +%s)"
pid=""
trap 'if [ -n "$pid" ]; then kill $pid 2>/dev/null || true; fi' EXIT
base="${DATABASE_URL%/*}"
reps_env=()
if [ "$REPS" -gt 0 ]; then
  reps_file="$(mktemp /tmp/load-reps.XXXXXX.toml)"
  for i in $(seq 1 "$REPS"); do
    printf '[[rep]]\nid = "rep%d@example.com"\nname = "Rep %d"\nopen_capacity = 4000000000\ndaily_capacity = 4000000000\nworking_hours = { days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], start = "00:00:00", end = "00:00:00" }\n\n' "$i" "$i"
  done > "$reps_file"
  reps_env=(LEAD_REPS="$reps_file")
fi
echo "== reps: $REPS"

echo "== raw single-row INSERT baseline and the store's capture write (same server)"
target/release/examples/store_write --backend postgres --writers 8,32 --rounds 1 --group-commit on --reps "$REPS" \
  | grep -E '^\| (8|32) |^\| writers'

# The server twice: tokio's default runtime (one worker thread per core)
# and one worker thread (TOKIO_WORKER_THREADS=1), which leaves the second
# core to PostgreSQL and wrk on this 2-core machine.
for workers in default 1; do
  echo "== lead-server (release) on $base/<fresh db>, tokio worker threads: $workers"
  dbw="${db}_w$workers"
  psql "$DATABASE_URL" -qc "CREATE DATABASE $dbw"
  env_workers=()
  if [ "$workers" != default ]; then env_workers=(TOKIO_WORKER_THREADS="$workers"); fi
  env "${env_workers[@]}" "${reps_env[@]}" DATABASE_URL="$base/$dbw" WEBHOOK_PORT=$PORT LEAD_BIND_ADDR=127.0.0.1 \
    LEAD_RATE_LIMIT_PER_IP=0 RUST_LOG=warn target/release/lead-server &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "localhost:$PORT/ready" >/dev/null && break; sleep 0.1; done
  sleep 1
  echo "RSS idle: $(grep VmRSS /proc/$pid/status)"

  max8=0
  for c in 8 32; do
    echo "== wrk -t2 -c$c -d$DURATION (closed loop, as fast as it answers)"
    out=$(wrk -t2 -c$c -d"$DURATION" --latency -s benches/load/capture.lua "http://127.0.0.1:$PORT")
    echo "$out" | grep -E 'Requests/sec|non_202|p50_ms|Socket errors'
    rps=$(echo "$out" | awk '/Requests\/sec/ {print int($2)}')
    if [ "$c" = 8 ]; then max8=$rps; fi
  done
  echo "RSS after load: $(grep -E 'VmRSS' /proc/$pid/status); peak $(grep VmHWM /proc/$pid/status)"

  # Half load: a closed loop with 2 connections runs at about half the
  # 8-connection maximum here (wrk cannot pace without adding its delay to
  # the latency it reports); the achieved rate is printed beside it.
  echo "== wrk -t1 -c2 (about half load; compare its Requests/sec with the 8-connection maximum $max8)"
  wrk -t1 -c2 -d"$DURATION" --latency -s benches/load/capture.lua "http://127.0.0.1:$PORT" \
    | grep -E 'Requests/sec|non_202|p50_ms'
  echo "leads stored: $(psql "$base/$dbw" -Atc 'SELECT count(*) FROM leads'), assigned: $(psql "$base/$dbw" -Atc 'SELECT count(*) FROM leads WHERE assigned_to IS NOT NULL')"
  kill $pid
  wait $pid 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $dbw WITH (FORCE)"
done
