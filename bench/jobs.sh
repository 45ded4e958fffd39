#!/usr/bin/env bash
# Benchmark, not a test: the job queue (issue 14). Measures, on a private PostgreSQL and the
# release binary:
#   1. no-op job flows completed per second, with one and with two instances
#      (JOBS jobs enqueued in one transaction; from its commit to the last completion);
#   2. the cost of a job.enqueue on an insert endpoint: requests/s of the same endpoint
#      without and with it (wrk, DURATION s each after WARMUP s, on an instance without
#      workers, so the ratio is the request's own cost and not the workers sharing the CPU);
#   3. the delay from a committed row change to its table-trigger flow starting (p50, p99),
#      over DELAY_ROWS single-row transactions GAP_MS apart.
# Prints one table; bench/README.md ("The job queue") explains the figures. Stops everything
# it started, also on failure.
#
#     bash bench/jobs.sh
#     JOBS=5000 DURATION=5 bash bench/jobs.sh     # a quick look
set -Eeuo pipefail
cd "$(dirname "$0")/.."

JOBS="${JOBS:-20000}"
WORKERS="${WORKERS:-4}"            # SLUICE_WORKERS of the measured instances
DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"
CONNECTIONS="${CONNECTIONS:-32}"
DELAY_ROWS="${DELAY_ROWS:-300}"
GAP_MS="${GAP_MS:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
HELPER="python3 bench/jobs/helper.py"

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
command -v psql >/dev/null || { echo "psql is not installed (apt-get install postgresql-client)"; exit 2; }
[ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL server binaries (set PG_BIN)"; exit 2; }

echo "== building the release binary"
cargo build --release --locked --quiet --bin sluice
SLUICE="$CARGO_TARGET_DIR/release/sluice"

WORK="$(mktemp -d /tmp/sluice-jobs-bench.XXXXXX)"
chmod 755 "$WORK"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PG_PORT="$(free_port)"
EMAIL="bench@example.com"
PASSWORD="bench password 123"
PIDS=()
PG_STARTED=""
as_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
    PG_USER="$(getent passwd postgres >/dev/null && echo postgres || echo nobody)"
    as_pg() { setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --clear-groups "$@"; }
fi
stop_pid() {
    if [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; then kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM ERR
    set +e +o pipefail
    if [ "$status" != 0 ]; then
        for log in "$WORK"/sluice*.log "$WORK/pg/server.log"; do
            [ -f "$log" ] && grep -E 'ERROR|WARN|FATAL' "$log" | tail -n 20 | sed "s|^|   ${log##*/}: |"
        done
    fi
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    [ -n "$PG_STARTED" ] && as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "FAILED: bench/jobs.sh line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'echo; echo "interrupted"; exit 130' INT TERM

echo "== starting PostgreSQL on 127.0.0.1:$PG_PORT"
mkdir "$WORK/pg" && chmod 700 "$WORK/pg"
[ "$(id -u)" = 0 ] && chown "$PG_USER" "$WORK/pg"
as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U bench --auth=trust -E UTF8 --no-instructions >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log"; exit 1; }
PG_STARTED=1
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -w -l "$WORK/pg/server.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200" start >/dev/null
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U bench bench
DB_URL="postgres://bench@127.0.0.1:$PG_PORT/bench"

# Starts an instance with $1 workers; prints "pid url".
start_sluice() {
    local workers="$1" port n="${#PIDS[@]}"
    port="$(free_port)"
    SLUICE_DATABASE_URL="$DB_URL" SLUICE_WORKERS="$workers" SLUICE_ADMIN_EMAIL="$EMAIL" \
        SLUICE_ADMIN_PASSWORD="$PASSWORD" RUST_LOG="${RUST_LOG:-warn}" \
        "$SLUICE" serve --data-dir "$WORK/data$n" --addr "127.0.0.1:$port" >>"$WORK/sluice$n.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 120); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && { echo "$pid http://127.0.0.1:$port"; return 0; }
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/sluice$n.log" >&2; exit 1; }
        sleep 0.5
    done
    echo "FAILED: Sluice did not become ready" >&2; exit 1
}

read -r A_PID A_URL < <(start_sluice "$WORKERS")
echo "== Sluice $A_URL ($WORKERS workers): tables and flows"
TOKEN="$(python3 bench/http/helper.py login "$A_URL" "$EMAIL" "$PASSWORD")"
$HELPER setup "$A_URL" "$TOKEN" bench/http/items.table.json

echo "== $JOBS no-op jobs, one instance"
$HELPER noop "$DB_URL" 1000 >/dev/null # warm-up
NOOP1="$($HELPER noop "$DB_URL" "$JOBS")"
echo "   $NOOP1"

read -r B_PID B_URL < <(start_sluice "$WORKERS")
echo "== $JOBS no-op jobs, two instances (second: $B_URL)"
$HELPER noop "$DB_URL" 1000 >/dev/null
NOOP2="$($HELPER noop "$DB_URL" "$JOBS")"
echo "   $NOOP2"
stop_pid "$B_PID"

echo "== $DELAY_ROWS row changes, ${GAP_MS} ms apart: delay to the trigger flow's start"
DELAY="$($HELPER delay "$DB_URL" "$DELAY_ROWS" "$GAP_MS")"
echo "   $DELAY"
stop_pid "$A_PID"

read -r C_PID C_URL < <(start_sluice 0)
echo "== insert endpoint without and with job.enqueue ($C_URL, no workers; ${DURATION} s each)"
rps() {
    local script="$WORK/create_$1.lua"
    { echo "BASE = \"/api/bench/$1\""; cat bench/http/create_item.lua; } >"$script"
    wrk -t2 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$script" "$C_URL" >/dev/null 2>&1 || true
    # A request must succeed before it is measured, and every measured one must have.
    local status
    status="$(curl -s -o "$WORK/check.json" -w '%{http_code}' -X POST -H 'content-type: application/json' \
        -d '{"title": "benchmark item", "qty": 3, "price": 12.5, "active": true}' "$C_URL/api/bench/$1")"
    [ "$status" = 201 ] || { echo "FAILED: POST /api/bench/$1 answered $status: $(cat "$WORK/check.json")" >&2; exit 1; }
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$script" "$C_URL" >"$WORK/wrk_$1.txt"
    if grep -q 'Non-2xx\|Socket errors' "$WORK/wrk_$1.txt"; then
        echo "FAILED: errors under load on /api/bench/$1:" >&2; cat "$WORK/wrk_$1.txt" >&2; exit 1
    fi
    awk '/Requests\/sec/ {print $2}' "$WORK/wrk_$1.txt"
}
PLAIN="$(rps plain)"
ENQUEUE="$(rps enqueue)"
echo "   plain $PLAIN req/s, with job.enqueue $ENQUEUE req/s"
ENQUEUED="$(psql "$DB_URL" -XAtqc "SELECT count(*) FROM sluice.jobs WHERE kind = 'noop' AND state = 'available'")"
echo "   jobs enqueued during the load: $ENQUEUED"

$HELPER report "$NOOP1" "$NOOP2" "$PLAIN" "$ENQUEUE" "$DELAY"
