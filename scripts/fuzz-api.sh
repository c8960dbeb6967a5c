#!/usr/bin/env bash
# REST fuzz run (issue #13): starts the real netmaster binary on 127.0.0.1 with an admin
# token and a fresh data directory, runs schemathesis (installed by install-deps.sh into
# /opt/contiv-rs/venv) from the document netmaster serves, then checks that the state the
# fuzzer left behind is consistent (scripts/fuzz_consistency.py).
#
# Checks: no 5xx, statuses, content types and bodies as the document says. Operations the
# document marks `x-streaming: true` (the feed never ends) are excluded, as any generic
# client should. Modest size: a fixed seed, a few examples per operation, a time budget.
#
#   scripts/fuzz-api.sh [path/to/netmaster]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${CONTIV_VENV:-/opt/contiv-rs/venv}
NETMASTER=${1:-${CARGO_TARGET_DIR:-target}/debug/netmaster}
EXAMPLES=${FUZZ_EXAMPLES:-15}
MAX_TIME=${FUZZ_MAX_TIME:-90}
SEED=${FUZZ_SEED:-13}

if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "fuzz-api: $VENV/bin/schemathesis is missing: run scripts/install-deps.sh as root" >&2
  exit 1
fi
[ -x "$NETMASTER" ] || { echo "fuzz-api: no netmaster binary at $NETMASTER (cargo build -p netmaster)" >&2; exit 1; }

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/token"
TOKEN=$(cat "$work/token")
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

start_netmaster() {
  "$NETMASTER" --listen "127.0.0.1:$PORT" --data-dir "$work/data" --token-file "$work/token" \
    --endpoint-gc-after 0 >>"$work/netmaster.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/version" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "fuzz-api: netmaster did not start:" >&2
  cat "$work/netmaster.log" >&2
  return 1
}
stop_netmaster() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
}

export FUZZ_TOKEN="$TOKEN"
start_netmaster
# A small world to fuzz on, so the consistency checks afterwards have endpoints to check.
"$VENV/bin/python" scripts/fuzz_consistency.py "$URL" seed
curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/api/v1/openapi.json" > "$work/openapi.json"
# Streaming operations, from the document itself.
mapfile -t excluded < <("$VENV/bin/python" - "$work/openapi.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for path, ops in doc["paths"].items():
    for method, op in ops.items():
        if isinstance(op, dict) and op.get("x-streaming"):
            print(op["operationId"])
EOF
)
args=()
for id in "${excluded[@]}"; do args+=(--exclude-operation-id "$id"); done
echo "fuzz-api: netmaster at $URL; streaming operations left out: ${excluded[*]:-none}"

status=0
# From the scratch directory: schemathesis keeps a cache in its working directory.
(cd "$work" && "$VENV/bin/schemathesis" run "$URL/api/v1/openapi.json" \
  --url "$URL" \
  -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" --max-time "$MAX_TIME" --seed "$SEED" \
  --workers 1 --request-timeout 10 --no-shrink \
  --suppress-health-check all \
  --report junit --report-dir "$work/report" \
  "${args[@]}") || status=$?

if grep -q 'panicked' "$work/netmaster.log"; then
  echo "fuzz-api: netmaster panicked:" >&2
  grep -A5 'panicked' "$work/netmaster.log" >&2
  status=1
fi
kill -0 "$pid" 2>/dev/null || { echo "fuzz-api: netmaster died during the run" >&2; status=1; }

# State consistency: what the fuzzer left is listed, survives a restart on the same data
# directory unchanged, and every endpoint holds the address its network's pool says.
"$VENV/bin/python" scripts/fuzz_consistency.py "$URL" before "$work/state.json" || status=1
stop_netmaster
start_netmaster
"$VENV/bin/python" scripts/fuzz_consistency.py "$URL" after "$work/state.json" || status=1

if [ "$status" -eq 0 ]; then
  echo "fuzz-api: ok (no 5xx, no panic, responses as documented, state consistent)"
else
  echo "fuzz-api: FAILED" >&2
  tail -n 40 "$work/netmaster.log" >&2
fi
exit $status
