#!/usr/bin/env bash
# Benchmark, not a test: Sluice's generated endpoints against a hand-written axum + sqlx server
# (examples/bench_baseline.rs) doing the same statements on the same database. Asserts nothing
# about timing. One command:
#
#     bash bench/http.sh                       # 20 s per endpoint and server, after a 5 s warm-up
#     DURATION=10 CONNECTIONS=64 bash bench/http.sh
#
# It builds both release binaries, starts a private PostgreSQL (initdb + pg_ctl, as an
# unprivileged user, loopback only, on a fresh directory under /tmp), starts Sluice on it,
# creates and seeds the `items` table through the admin API (10,000 rows by CSV import),
# publishes bench/http/flows with `sluice import --publish`, starts the baseline on the same
# database, checks that both answer the same, loads each endpoint on each server with wrk
# (same threads, connections and duration), samples Sluice's resident memory while it is
# loaded, prints a table, and stops everything it started (also on Ctrl-C or failure).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

DURATION="${DURATION:-20}"       # seconds of measured load per endpoint and server
WARMUP="${WARMUP:-5}"            # seconds of unmeasured load before each measurement
THREADS="${THREADS:-2}"          # wrk threads
CONNECTIONS="${CONNECTIONS:-32}" # wrk connections (both servers have a pool of 16)
POOL="${POOL:-16}"               # database connections of each server
ENDPOINTS="${ENDPOINTS:-get_item list_items create_item}"
FIRST="${FIRST:-baseline}"       # which server is loaded first for each endpoint
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
[ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL server binaries (set PG_BIN)"; exit 2; }

echo "== building release binaries (sluice, example bench_baseline)"
cargo build --release --locked --quiet --bin sluice --example bench_baseline
SLUICE="$CARGO_TARGET_DIR/release/sluice"
BASELINE="$CARGO_TARGET_DIR/release/examples/bench_baseline"

WORK="$(mktemp -d /tmp/sluice-http-bench.XXXXXX)"
chmod 755 "$WORK"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PG_PORT="$(free_port)"
SLUICE_PORT="$(free_port)"
BASE_PORT="$(free_port)"
EMAIL="bench@example.com"
PASSWORD="bench password 123"
SLUICE_PID=""
BASE_PID=""
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
    trap - EXIT INT TERM
    stop_pid "$SAMPLER_PID"
    stop_pid "$BASE_PID"
    stop_pid "$SLUICE_PID"
    if [ -n "$PG_STARTED" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
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

echo "== starting Sluice on 127.0.0.1:$SLUICE_PORT"
SLUICE_URL="http://127.0.0.1:$SLUICE_PORT"
SLUICE_DATABASE_URL="$DB_URL" SLUICE_DB_MAX_CONNECTIONS="$POOL" \
    SLUICE_ADMIN_EMAIL="$EMAIL" SLUICE_ADMIN_PASSWORD="$PASSWORD" RUST_LOG="${RUST_LOG:-warn}" \
    "$SLUICE" serve --data-dir "$WORK/data" --addr "127.0.0.1:$SLUICE_PORT" >"$WORK/sluice.log" 2>&1 &
SLUICE_PID=$!
wait_ready() {
    local url="$1" pid="$2" log="$3"
    for _ in $(seq 1 120); do
        if curl -fsS "$url" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "the server exited:"; cat "$log"; exit 1
        fi
        sleep 0.5
    done
    echo "the server did not become ready:"; cat "$log"; exit 1
}
wait_ready "$SLUICE_URL/readyz" "$SLUICE_PID" "$WORK/sluice.log"
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SLUICE_PID/status"; }
RSS_STAGES="started $(rss_mib)"

TOKEN="$(curl -fsS -X POST "$SLUICE_URL/_/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
RSS_STAGES="$RSS_STAGES, signed in $(rss_mib)"

echo "== creating table items and importing 10,000 rows"
curl -fsS -X POST "$SLUICE_URL/_/api/v1/tables" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -o /dev/null --data-binary @bench/http/items.table.json
python3 - "$WORK/items.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("title,qty,price,active\n")
    for i in range(1, 10001):
        f.write(f"item {i},{i % 100},{i % 1000}.{i % 100:02d},{'true' if i % 3 else 'false'}\n")
PY
curl -fsS -X POST "$SLUICE_URL/_/api/v1/tables/items/import?mode=all" \
    -H "authorization: Bearer $TOKEN" -H 'content-type: text/csv' \
    --data-binary @"$WORK/items.csv" -o /dev/null
# Fresh statistics, as autovacuum would give a table that has been in use for a while.
psql -q -h 127.0.0.1 -p "$PG_PORT" -U bench bench -c 'VACUUM ANALYZE app.items' >/dev/null
RSS_STAGES="$RSS_STAGES, table seeded $(rss_mib)"

echo "== publishing bench/http/flows"
"$SLUICE" import bench/http/flows --publish --url "$SLUICE_URL" --email "$EMAIL" --password "$PASSWORD" \
    >"$WORK/import.log" 2>&1 || { cat "$WORK/import.log"; exit 1; }
RSS_STAGES="$RSS_STAGES, flows published $(rss_mib)"

echo "== starting the baseline on 127.0.0.1:$BASE_PORT"
BASE_URL="http://127.0.0.1:$BASE_PORT"
DATABASE_URL="$DB_URL" BENCH_ADDR="127.0.0.1:$BASE_PORT" BENCH_POOL="$POOL" \
    "$BASELINE" >"$WORK/baseline.log" 2>&1 &
BASE_PID=$!
wait_ready "$BASE_URL/api/items/1" "$BASE_PID" "$WORK/baseline.log"

echo "== checking that both servers answer the same"
python3 - "$SLUICE_URL" "$BASE_URL" <<'PY'
import json, sys, urllib.request
sluice, base = sys.argv[1], sys.argv[2]
def call(root, method, path, body=None):
    req = urllib.request.Request(root + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
for path in ["/api/items/1", "/api/items/10000", "/api/items?limit=20", "/api/items"]:
    a, b = call(sluice, "GET", path), call(base, "GET", path)
    assert a == b, f"GET {path}: Sluice {a} but baseline {b}"
for path in ["/api/items/0", "/api/items/10001", "/api/items?limit=500"]:
    (sa, _), (sb, _) = call(sluice, "GET", path), call(base, "GET", path)
    assert sa == sb and sa >= 400, f"GET {path}: Sluice {sa} but baseline {sb}"
item = {"title": "check", "qty": 1, "price": 2.5, "active": False}
(sa, a), (sb, b) = call(sluice, "POST", "/api/items", item), call(base, "POST", "/api/items", item)
strip = lambda r: {k: v for k, v in r.items() if k not in ("id", "created_at", "updated_at")}
assert sa == sb == 201 and strip(a) == strip(b) and a.keys() == b.keys(), f"POST: {a} / {b}"
print("   same statuses and bodies for GET by id, list, 404, 400 and POST")
PY

# Highest VmRSS of Sluice, sampled every 200 ms while a measurement runs.
sample_rss() {
    local out="$1" max=0 rss
    while kill -0 "$SLUICE_PID" 2>/dev/null; do
        rss="$(awk '/^VmRSS/ {print $2}' "/proc/$SLUICE_PID/status" 2>/dev/null || echo 0)"
        [ "${rss:-0}" -gt "$max" ] && max="$rss" && echo "$max" >"$out"
        sleep 0.2
    done
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
run_wrk() {
    local server="$1" url="$2" endpoint="$3" script="$WORK/$3.lua"
    cat "bench/http/$endpoint.lua" bench/http/report.lua >"$script"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$script" "$url" >/dev/null
    local rss_file="$WORK/rss.$endpoint"
    echo 0 >"$rss_file"
    if [ "$server" = sluice ]; then
        sample_rss "$rss_file" &
        SAMPLER_PID=$!
    fi
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "$url" >"$WORK/wrk.$server.$endpoint"
    if [ "$server" = sluice ]; then
        stop_pid "$SAMPLER_PID"
        SAMPLER_PID=""
    fi
    local line
    line="$(grep '^RESULT ' "$WORK/wrk.$server.$endpoint")" || {
        cat "$WORK/wrk.$server.$endpoint"; exit 1
    }
    echo "$endpoint $server ${line#RESULT } $(cat "$rss_file")" >>"$RESULTS"
    echo "   $endpoint on $server: $(awk '{printf "%.0f req/s, p50 %.2f ms, p99 %.2f ms", $3, $4 / 1000, $5 / 1000}' <<<"${line#RESULT }")"
}

echo "== load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency (after ${WARMUP}s warm-up), loopback"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "   Sluice RSS (MiB) after each step: $RSS_STAGES"
for endpoint in $ENDPOINTS; do
    # Both servers see the table in the same state for reads; the POST run of each inserts its
    # own rows (the list endpoint reads the first 20 only). FIRST=sluice swaps the order.
    if [ "$FIRST" = sluice ]; then
        run_wrk sluice "$SLUICE_URL" "$endpoint"
        run_wrk baseline "$BASE_URL" "$endpoint"
    else
        run_wrk baseline "$BASE_URL" "$endpoint"
        run_wrk sluice "$SLUICE_URL" "$endpoint"
    fi
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
HWM="$(awk '/^VmHWM/ {print $2}' "/proc/$SLUICE_PID/status")"

python3 - "$RESULTS" "$HWM" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], {})[f[1]] = {
        "n": int(f[2]), "rps": float(f[4]), "p50": int(f[5]) / 1000, "p99": int(f[6]) / 1000,
        "non2xx": int(f[7]), "socket": int(f[8]), "rss": int(f[9]) / 1024,
    }
names = {"get_item": "GET /items/{id}", "list_items": "GET /items?limit=20", "create_item": "POST /items"}
print()
print("| endpoint | server | req/s | p50 ms | p99 ms | errors | Sluice RSS under load |")
print("|---|---|---:|---:|---:|---:|---:|")
ratios = []
for ep, by in rows.items():
    for server in ("baseline", "sluice"):
        r = by.get(server)
        if r is None:
            continue
        rss = f"{r['rss']:.1f} MiB" if server == "sluice" else ""
        print(f"| {names.get(ep, ep)} | {server} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
              f"{r['non2xx'] + r['socket']} | {rss} |")
    if "baseline" in by and "sluice" in by:
        s, b = by["sluice"], by["baseline"]
        ratios.append((names.get(ep, ep), s["rps"] / b["rps"], s["p99"] / b["p99"] if b["p99"] else 0))
print()
print("| endpoint | req/s Sluice/baseline (aim ≥ 0.90) | p99 Sluice/baseline (aim ≤ 1.25) |")
print("|---|---:|---:|")
for name, rps, p99 in ratios:
    print(f"| {name} | {rps:.2f} | {p99:.2f} |")
print()
print(f"Sluice peak RSS over the whole run (VmHWM): {int(sys.argv[2]) / 1024:.1f} MiB (aim < 60 MiB)")
print(f"load average before / after: {sys.argv[3]} / {sys.argv[4]}")
bad = [(ep, s) for ep, by in rows.items() for s, r in by.items() if r["non2xx"] or r["socket"]]
if bad:
    print(f"WARNING: errors during load in {bad}; see the wrk output")
PY
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m); PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'); wrk $(wrk -v 2>&1 | head -n 1 | awk '{print $2}')"
