#!/usr/bin/env bash
# Benchmark, not a test: imports a generated CSV file of 1,000,000 rows (6 columns) into a
# managed table through POST /_/api/v1/tables/{name}/import of a release build, and reports
# rows per second and the Sluice process's peak resident memory (VmHWM). It asserts nothing
# about timing. One command:
#
#     bash bench/csv_import.sh            # ROWS=200000 bash bench/csv_import.sh for a shorter run
#
# Starts Sluice (with its own private Postgres) on a free loopback port and a fresh data
# directory under /tmp, and stops it and removes that directory at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS="${ROWS:-1000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"

echo "== building the release binary"
cargo build --release --locked --quiet
BIN="$CARGO_TARGET_DIR/release/sluice"

WORK="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
chmod 755 "$WORK" # the private Postgres runs as an unprivileged user when we are root
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
EMAIL="bench@example.com"
PASSWORD="bench password 123"
PID=""

stop() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap stop EXIT

echo "== starting Sluice on $BASE (data dir $WORK/data)"
SLUICE_ADMIN_EMAIL="$EMAIL" SLUICE_ADMIN_PASSWORD="$PASSWORD" RUST_LOG="${RUST_LOG:-warn}" \
    "$BIN" serve --data-dir "$WORK/data" --addr "127.0.0.1:$PORT" >"$WORK/sluice.log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do
    if curl -fsS "$BASE/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "Sluice exited:"; cat "$WORK/sluice.log"; exit 1
    fi
    sleep 0.5
done
curl -fsS "$BASE/readyz" >/dev/null

TOKEN="$(curl -fsS -X POST "$BASE/_/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"

curl -fsS -X POST "$BASE/_/api/v1/tables" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -o /dev/null -d '{"name": "bench", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "qty", "type": "integer"},
        {"name": "price", "type": "decimal"},
        {"name": "active", "type": "boolean"},
        {"name": "seen_at", "type": "timestamp"},
        {"name": "note", "type": "text"}]}'

echo "== generating $ROWS rows"
CSV="$WORK/bench.csv"
python3 - "$ROWS" "$CSV" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w", newline="") as f:
    f.write("title,qty,price,active,seen_at,note\n")
    out = []
    for i in range(rows):
        # Every tenth note needs quoting (a comma and a doubled quote).
        note = f'"call back, ask for ""{i % 97}"""' if i % 10 == 0 else f"note {i % 1000}"
        out.append(
            f"item {i},{i % 10000},{i % 1000}.{i % 100:02d},{'true' if i % 2 else 'false'},"
            f"2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z,{note}\n"
        )
        if len(out) == 10000:
            f.write("".join(out))
            out.clear()
    f.write("".join(out))
PY
BYTES="$(stat -c %s "$CSV")"
HWM_BEFORE="$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
CPU_BEFORE="$(cpu_ticks)"

echo "== importing ($(( BYTES / 1048576 )) MiB)"
RESULT="$WORK/result.json"
TIME="$(curl -sS -o "$RESULT" -w '%{http_code} %{time_total}' -X POST \
    "$BASE/_/api/v1/tables/bench/import?mode=all" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: text/csv' --data-binary @"$CSV")"
STATUS="${TIME%% *}"
SECONDS_TOTAL="${TIME##* }"
HWM_AFTER="$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")"
CPU_AFTER="$(cpu_ticks)"
if [ "$STATUS" != "200" ]; then
    echo "import failed with $STATUS:"; head -c 2000 "$RESULT"; echo; exit 1
fi
IMPORTED="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["imported"])' "$RESULT")"

python3 - "$ROWS" "$IMPORTED" "$BYTES" "$SECONDS_TOTAL" "$HWM_BEFORE" "$HWM_AFTER" \
    "$(( CPU_AFTER - CPU_BEFORE ))" "$(getconf CLK_TCK)" <<'PY'
import sys
rows, imported, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
secs, before, after = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
cpu = int(sys.argv[7]) / int(sys.argv[8])
assert imported == rows, f"imported {imported} of {rows} rows"
print(f"rows imported        {imported}")
print(f"file size            {size / 1048576:.1f} MiB")
print(f"time (curl total)    {secs:.2f} s")
print(f"rows per second      {imported / secs:,.0f}")
print(f"throughput           {size / 1048576 / secs:.1f} MiB/s")
print(f"Sluice CPU time      {cpu:.2f} s (parsing, checking, COPY encoding; Postgres is separate)")
print(f"Sluice peak RSS      {after / 1024:.1f} MiB (VmHWM; {before / 1024:.1f} MiB before the import)")
PY
echo "machine              $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)"
