#!/usr/bin/env bash
# `lead import` of N generated leads into PostgreSQL beside PostgreSQL's own
# COPY of the same rows into a plain table, then `lead export` of them, with
# wall time, rows/s and memory (docs/perf.md, "lead import and export").
#
#   cargo build --release -p lead-cli -p lead-benches --example febrl_gen
#   .ci/with-postgres bash benches/load/import_export.sh 1000000 /tmp/import-perf
#
# Needs DATABASE_URL naming a PostgreSQL server where it may create
# databases (.ci/with-postgres gives one), /usr/bin/time and psql.
# TARGET_DIR names the cargo target directory (default ./target).
set -euo pipefail

n="${1:?usage: import_export.sh N WORKDIR}"
work="${2:?usage: import_export.sh N WORKDIR}"
target="${TARGET_DIR:-target}/release"
lead="$target/lead"
gen="$target/examples/febrl_gen"
mkdir -p "$work"
admin="$DATABASE_URL"
db="import_perf_$$"
url="${admin%/*}/$db"

psql -q "$admin" -c "CREATE DATABASE $db"
trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

echo "== generating $n leads (FEBRL-style generator, seed 7)"
"$gen" "$n" 7 "$work/leads.csv"
rows=$(($(wc -l < "$work/leads.csv") - 1))
echo "rows: $rows, bytes: $(stat -c %s "$work/leads.csv")"

# Memory of a running process, sampled every second: the export's RSS
# over its run shows whether it stays flat.
sample_rss() {
  local pid=$1 out=$2
  : > "$out"
  while kill -0 "$pid" 2>/dev/null; do
    awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null >> "$out" || true
    sleep 1
  done
}

echo "== lead migrate"
DATABASE_URL="$url" "$lead" migrate

echo "== COPY of the same rows into a plain table (every column text)"
columns=$(head -1 "$work/leads.csv" | sed 's/,/ text, /g; s/$/ text/')
psql -q "$url" -c "CREATE TABLE plain ($columns)"
start=$(date +%s.%N)
psql -q "$url" -c "\\copy plain FROM '$work/leads.csv' WITH (FORMAT csv, HEADER true)"
end=$(date +%s.%N)
copied=$(psql -tA "$url" -c "SELECT count(*) FROM plain")
echo "copied $copied rows in $(echo "$end - $start" | bc) s"

echo "== lead import (every row a capture: normalized, scored, deduplicated, routed, outboxed)"
DATABASE_URL="$url" /usr/bin/time -v "$lead" import "$work/leads.csv" --map id=- --map entity=- --no-alerts \
  > "$work/import.out" 2> "$work/import.time" || true
cat "$work/import.out"
grep -E "Elapsed|Maximum resident" "$work/import.time"

echo "== lead export (CSV)"
DATABASE_URL="$url" /usr/bin/time -v "$lead" export --output "$work/export.csv" \
  2> "$work/export.time" &
wrapper=$!
# /usr/bin/time's child is the export.
sleep 0.2
child=$(pgrep -P "$wrapper" -x lead || true)
if [ -n "$child" ]; then sample_rss "$child" "$work/export.rss" & fi
wait "$wrapper"
wait
grep -E "exported|Elapsed|Maximum resident" "$work/export.time"
echo "exported rows: $(($(python3 -c "import csv,sys; print(sum(1 for _ in csv.reader(open('$work/export.csv'))))") - 1))"
if [ -s "$work/export.rss" ]; then
  echo "export RSS samples (KiB), every second: $(tr '\n' ' ' < "$work/export.rss")"
fi

echo "== lead export (XLSX, first 1 048 575 at most)"
DATABASE_URL="$url" /usr/bin/time -v "$lead" export --output "$work/export.xlsx" \
  2> "$work/export-xlsx.time" || true
grep -E "exported|Elapsed|Maximum resident|lead:" "$work/export-xlsx.time"
