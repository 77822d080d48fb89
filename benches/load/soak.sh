#!/usr/bin/env bash
# Soak test of the release lead-server (issue 16; results in
# docs/reliability.md, "Soak"): for each store, the maximum capture rate
# (a short closed-loop run), then DURATION at half of it in an open loop,
# with one row per INTERVAL (requests, 202s, other answers, p50/p99/max
# latency from the due time, the server's RSS), and at the end RSS and p99
# after warm-up and the leads stored against the 202s answered.
#
#   .ci/with-postgres bash benches/load/soak.sh            # both stores, 30 minutes each
#   STORES=sqlite bash benches/load/soak.sh                # no PostgreSQL needed
#   DURATION=5m INTERVAL=30s WARMUP=2 STORES=sqlite bash benches/load/soak.sh   # a quick check
#
# Settings (environment): DURATION (30m), INTERVAL (60s), WARMUP (rows
# left out of the RSS/p99 summary, 3), STORES (sqlite,postgres),
# MAX_DURATION (20s) and MAX_CONNECTIONS (8) for the maximum-rate run,
# CONNECTIONS (16, the soak's keep-alive connections), RATE (a fixed soak
# rate instead of half the measured maximum), PORT (5099).
#
# Each measurement gets a fresh database (SQLite: a new file under /tmp;
# PostgreSQL: a new database on the server of DATABASE_URL). Captures are
# unsigned and the per-IP rate limit is off, as in http_load.sh. The
# generator (benches/examples/soak.rs) shares the machine with the server:
# on a small machine their CPU contends, which is part of what is measured.
# Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-30m}
INTERVAL=${INTERVAL:-60s}
WARMUP=${WARMUP:-3}
STORES=${STORES:-sqlite,postgres}
MAX_DURATION=${MAX_DURATION:-20s}
MAX_CONNECTIONS=${MAX_CONNECTIONS:-8}
CONNECTIONS=${CONNECTIONS:-16}
RATE=${RATE:-}
PORT=${PORT:-5099}

if [[ ",$STORES," == *",postgres,"* ]]; then
  : "${DATABASE_URL:?PostgreSQL needs DATABASE_URL: run through .ci/with-postgres, or STORES=sqlite}"
  case "$DATABASE_URL" in postgres://*|postgresql://*) ;; *) echo "DATABASE_URL is not a PostgreSQL URL" >&2; exit 1 ;; esac
fi
pg_url="${DATABASE_URL:-}"

cargo build --release -q -p lead-server
cargo build --release -q -p lead-benches --example soak
server=target/release/lead-server
soak=target/release/examples/soak
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  server="$CARGO_TARGET_DIR/release/lead-server"
  soak="$CARGO_TARGET_DIR/release/examples/soak"
fi

pid=""
work="$(mktemp -d /tmp/lead-soak.XXXXXX)"
pg_dbs=()
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  for db in "${pg_dbs[@]}"; do psql "$pg_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# A fresh database URL for store $1, named $2.
fresh_db() {
  case "$1" in
    sqlite) echo "sqlite://$work/$2.db" ;;
    postgres)
      psql "$pg_url" -qc "CREATE DATABASE $2"
      pg_dbs+=("$2")
      echo "${pg_url%/*}/$2" ;;
  esac
}

# Starts the server on $1 (a database URL); sets $pid.
start_server() {
  env DATABASE_URL="$1" WEBHOOK_PORT="$PORT" LEAD_BIND_ADDR=127.0.0.1 \
    LEAD_RATE_LIMIT_PER_IP=0 RUST_LOG=warn "$server" 2>>"$work/server.log" &
  pid=$!
  for _ in $(seq 1 200); do curl -sf "localhost:$PORT/ready" >/dev/null && return 0; sleep 0.1; done
  echo "the server did not get ready" >&2
  exit 1
}

stop_server() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
}

# Leads stored in the database $2 of store $1.
count_leads() {
  case "$1" in
    sqlite) sqlite3 "${2#sqlite://}" 'SELECT count(*) FROM leads' ;;
    postgres) psql "$2" -Atc 'SELECT count(*) FROM leads' ;;
  esac
}

run_id=$(date +%s)
IFS=',' read -ra stores <<< "$STORES"
for store in "${stores[@]}"; do
  echo
  echo "==== store: $store"
  rate="$RATE"
  if [ -z "$rate" ]; then
    url=$(fresh_db "$store" "soakmax_${run_id}_$store")
    start_server "$url"
    echo "== maximum rate: closed loop, $MAX_CONNECTIONS connections, $MAX_DURATION (fresh database)"
    out=$("$soak" --url "http://127.0.0.1:$PORT" --rate 0 --connections "$MAX_CONNECTIONS" \
      --duration "$MAX_DURATION" --interval "$MAX_DURATION" --warmup 0 --pid "$pid") || true
    echo "$out" | grep -E '^total|^achieved_rate|^whole run'
    max=$(echo "$out" | sed -n 's/^achieved_rate=//p')
    stop_server
    rate=$(( max / 2 ))
    echo "== soak rate: half of $max = $rate captures/s"
  fi
  url=$(fresh_db "$store" "soak_${run_id}_$store")
  start_server "$url"
  sleep 1
  echo "== soak: open loop at $rate captures/s for $DURATION, $CONNECTIONS connections (fresh database)"
  status=0
  "$soak" --url "http://127.0.0.1:$PORT" --rate "$rate" --connections "$CONNECTIONS" \
    --duration "$DURATION" --interval "$INTERVAL" --warmup "$WARMUP" --pid "$pid" || status=$?
  echo "server at the end: $(grep -E 'VmRSS|VmHWM' /proc/$pid/status | tr -s ' \n' ' ')"
  if [ "$store" = sqlite ]; then
    file="${url#sqlite://}"
    echo "SQLite files: $(ls -l "$file" "$file-wal" 2>/dev/null | awk '{printf "%s %.1f MiB; ", $NF, $5/1048576}')"
  fi
  stop_server
  if grep -qvE 'captures are accepted unsigned|no LEAD_API_KEYS|no reps' "$work/server.log"; then
    echo "server log (beyond the expected start-up warnings):"; grep -vE 'captures are accepted unsigned|no LEAD_API_KEYS|no reps' "$work/server.log" | tail -20
  fi
  : > "$work/server.log"
  echo "leads stored: $(count_leads "$store" "$url") (compare with the 202s above)"
  if [ "$status" -ne 0 ]; then echo "NOTE: the generator saw answers other than 202 or transport errors (exit $status)"; fi
done
