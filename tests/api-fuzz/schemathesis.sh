#!/usr/bin/env bash
# Fuzzes the running server through its own OpenAPI document with
# schemathesis (from PyPI): every documented operation, with generated
# valid and invalid requests, a read-write API key and unsigned captures.
#
#   tests/api-fuzz/schemathesis.sh            # default budget
#   MAX_EXAMPLES=50 tests/api-fuzz/schemathesis.sh
#
# It builds and starts `lead-server` on a throw-away SQLite file with two
# reps, installs schemathesis into a virtualenv under target/ (once), and
# fails when a check fails. The checks that must hold:
#   not_a_server_error, status_code_conformance (no undocumented status),
#   content_type_conformance, response_schema_conformance,
#   response_headers_conformance.
# STRICT=1 adds negative_data_rejection and positive_data_acceptance (are
# the request schemas exactly as strict as the validation?); the rules no
# JSON Schema can state show up there (docs/reliability.md lists them).
# Results go to target/api-fuzz/ (ndjson report and the server's log);
# docs/reliability.md records the last run. Not part of `.ci/run`: it
# needs PyPI and takes minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=target/api-fuzz
mkdir -p "$out"
venv=target/api-fuzz/venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis>=4,<5"
fi
"$venv/bin/schemathesis" --version

cargo build -q -p lead-server
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
work="$(mktemp -d)"
key="fuzz-key-$(date +%s)"
cat > "$work/reps.toml" <<'TOML'
[[rep]]
id = "ana@sales.example.com"
name = "Ana"
working_hours = { days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], start = "00:00:00", end = "00:00:00" }

[[rep]]
id = "bob@sales.example.com"
name = "Bob"
TOML

DATABASE_URL="sqlite://$work/leads.db" \
WEBHOOK_PORT="$port" \
LEAD_BIND_ADDR=127.0.0.1 \
LEAD_REPS="$work/reps.toml" \
LEAD_API_KEYS="$(printf '%s' "$key" | sha256sum | cut -d' ' -f1):read,write" \
LEAD_RATE_LIMIT_PER_IP=0 \
LEAD_RATE_LIMIT_PER_KEY=0 \
RUST_LOG=warn \
  target/debug/lead-server >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$out/server.log"; exit 1; fi
  sleep 0.1
done

# A real lead, rep and follow-up for the routes that take an id, so those
# operations reach their logic instead of answering 404 (sent with the
# write key: a verified capture is told its lead id).
api="http://127.0.0.1:$port"
lead="$(curl -fsS -X POST "$api/webhook/lead" -H 'Content-Type: application/json' -H "Authorization: Bearer $key" \
  -d '{"email":"fuzz.target@example.com","first_name":"Ana","last_name":"Fuzz","company":"Acme"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["lead_ext_id"])')"
task="$(curl -fsS "$api/api/followups?lead=$lead" -H "Authorization: Bearer $key" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["followups"][0]["id"])')"
cat > "$work/schemathesis.toml" <<TOML
[parameters]
"path.lead_ext_id" = "$lead"
"path.rep_id" = "ana@sales.example.com"
"path.id" = "$task"
TOML

checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"
if [ "${STRICT:-0}" = 1 ]; then
  checks="$checks,negative_data_rejection,positive_data_acceptance"
fi
set +e
"$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$api/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks "$checks" \
  --max-examples "${MAX_EXAMPLES:-100}" \
  --workers 2 \
  --suppress-health-check all \
  --report ndjson --report-dir "$out" \
  --generation-database none \
  --seed "${SEED:-20261202}"
status=$?
set -e
if grep -q "panicked" "$out/server.log"; then
  echo "the server panicked; see $out/server.log" >&2
  status=1
fi
exit $status
