#!/usr/bin/env bash
# Fuzzes a running Sluice with schemathesis (from PyPI, pinned) against two OpenAPI documents:
# the generated API of the example apps (/api/openapi.json) and the admin API
# (/_/api/v1/openapi.json, with an admin API token). Fails on any 5xx and on any response whose
# body breaks its documented schema. Bounded in time: FUZZ_SECONDS per document (default 120).
#
# Usage: .ci/fuzz.sh [path/to/sluice]   (default: the debug binary, built if missing)
# Needs: Postgres server binaries (for Sluice's private cluster), python3 with venv, network to
# PyPI on the first run. Reproduce a failure with the seed it prints.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
FUZZ_SECONDS="${FUZZ_SECONDS:-120}"
FUZZ_SEED="${FUZZ_SEED:-$RANDOM}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
BIN="${1:-$CARGO_TARGET_DIR/debug/sluice}"
VENV="${FUZZ_VENV:-/var/tmp/sluice-fuzz-venv}"

if [ ! -x "$BIN" ]; then
    cargo build --quiet --locked
fi

# schemathesis in its own virtualenv, reused across runs.
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        apt-get update && apt-get install -y --no-install-recommends python3-venv
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK="$(mktemp -d /var/tmp/sluice-fuzz.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
B="http://127.0.0.1:$PORT"
EMAIL=fuzz@example.com
PASSWORD="fuzz-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

SLUICE_ADDR="127.0.0.1:$PORT" SLUICE_DATA_DIR="$WORK/data" \
SLUICE_ADMIN_EMAIL="$EMAIL" SLUICE_ADMIN_PASSWORD="$PASSWORD" \
RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve >"$WORK/sluice.log" 2>&1 &
PID=$!
stop() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap stop EXIT

for _ in $(seq 1 240); do
    curl -fsS "$B/readyz" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/sluice.log"; exit 1; }
    sleep 0.5
done
curl -fsS "$B/readyz" >/dev/null

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

LOGIN=$(curl -fsS "$B/_/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\"}" | json_field '["token"]')
admin() { curl -fsS "$@" -H "authorization: Bearer $LOGIN" -H 'content-type: application/json'; }
# The fuzzer gets an admin API token of its own: logging out a login token (which the fuzzer
# will try) would end the run's authentication.
TOKEN=$(admin "$B/_/api/v1/api-tokens" -d '{"name": "fuzz"}' | json_field '["token"]')

# The example apps, published (as in the README's tour).
admin "$B/_/api/v1/tables" -d @flows/examples/todo/todos.table.json >/dev/null
admin "$B/_/api/v1/tables" -d @flows/examples/auth/users.table.json >/dev/null
for f in flows/examples/todo/*.flow.json flows/examples/auth/*.flow.json; do
    id=$(admin "$B/_/api/v1/flows" -d @"$f" | json_field '["id"]')
    admin -X POST "$B/_/api/v1/flows/$id/publish" >/dev/null
done

ST=("$VENV/bin/st" --no-color run
    --checks not_a_server_error,response_schema_conformance
    --max-time "$FUZZ_SECONDS" --seed "$FUZZ_SEED" --request-timeout 20
    --workers 1 --suppress-health-check all)
status=0
echo "== schemathesis $SCHEMATHESIS_VERSION, seed $FUZZ_SEED, ${FUZZ_SECONDS}s per document"
echo "== generated API of the example apps: $B/api/openapi.json"
# schemathesis keeps its example database in the working directory: keep it out of the checkout.
cd "$WORK"
"${ST[@]}" --url "$B/api" "$B/api/openapi.json" || status=1
echo "== admin API: $B/_/api/v1/openapi.json"
# Left out: operations that end the fuzzer's own authentication or the instance's first-run
# setup. Everything else, destructive or not, is fair game on this throwaway instance.
"${ST[@]}" --url "$B/_/api/v1" -H "Authorization: Bearer $TOKEN" \
    --exclude-operation-id post_auth_logout \
    --exclude-operation-id delete_session \
    --exclude-operation-id delete_api_tokens_id \
    --exclude-path-regex '^/setup$' \
    "$B/_/api/v1/openapi.json" || status=1
if [ "$status" -ne 0 ]; then
    echo "== server errors in the log:"
    grep -E 'request failed|panic' "$WORK/sluice.log" | tail -50 || true
fi
exit "$status"
