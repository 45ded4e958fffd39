"""Helper of bench/jobs.sh: publishes the benchmark's flows and tables through the admin API,
and measures what the queue does with SQL (psql). Measures only; asserts nothing about time."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request


def die(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def call(method, url, body=None, token=None):
    h = {"content-type": "application/json"}
    if token:
        h["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def must(expected, result, what):
    status, body = result
    if status != expected:
        die(f"{what}: expected {expected}, got {status}: {body}")
    return body


def flow(name, nodes, entry, **rest):
    return {"format": "sluice.flow", "format_version": 1, "name": name, "entry": entry,
            "nodes": nodes, **rest}


RESPOND = {"done": {"type": "respond", "status": 200, "body": {"ok": True}}}
INSERT = {"type": "db.insert", "table": "items", "as": "item",
          "values": {"title": {"$rhai": "request.body.title"}, "qty": {"$rhai": "request.body.qty"},
                     "price": {"$rhai": "request.body.price"}, "active": {"$rhai": "request.body.active"}}}
FLOWS = [
    # The no-op job flow: what every measured job runs.
    flow("noop", RESPOND, "done", trigger={"kind": "job"}),
    # The same insert endpoint, without and with a job.enqueue after the insert.
    flow("insert_plain", {"insert": {**INSERT, "next": {"ok": "reply"}},
                          "reply": {"type": "respond", "status": 201, "body": {"$rhai": "item"}}},
         "insert", endpoint={"method": "POST", "path": "/bench/plain"}),
    flow("insert_enqueue", {"insert": {**INSERT, "next": {"ok": "enqueue"}},
                            "enqueue": {"type": "job.enqueue", "flow": "noop",
                                        "input": {"item": {"$rhai": "item.id"}}, "next": {"ok": "reply"}},
                            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "item"}}},
         "insert", endpoint={"method": "POST", "path": "/bench/enqueue"}),
    # A table trigger that does nothing: the delay from a commit to its start is measured.
    flow("on_ping", RESPOND, "done", trigger={"kind": "table", "table": "pings", "on": ["insert"]}),
]


def cmd_setup(url, token, items_json):
    with open(items_json) as f:
        must(201, call("POST", f"{url}/_/api/v1/tables", json.load(f), token), "create items")
    must(201, call("POST", f"{url}/_/api/v1/tables",
                   {"name": "pings", "events": True, "fields": [{"name": "n", "type": "integer"}]},
                   token), "create pings")
    for doc in FLOWS:
        record = must(201, call("POST", f"{url}/_/api/v1/flows", doc, token), f"save {doc['name']}")
        must(200, call("POST", f"{url}/_/api/v1/flows/{record['id']}/publish", None, token),
             f"publish {doc['name']}")


def psql(db_url, sql):
    out = subprocess.run(["psql", db_url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def cmd_noop(db_url, count):
    """Enqueues COUNT no-op jobs in one transaction and waits until all completed; prints jobs/s
    from the commit to the last completion (the jobs' own finalized_at)."""
    count = int(count)
    psql(db_url, "DELETE FROM sluice.jobs WHERE kind = 'noop'")
    started = psql(db_url, f"""
        WITH j AS (INSERT INTO sluice.jobs (kind, args, max_attempts)
                   SELECT 'noop', '{{}}', 5 FROM generate_series(1, {count}) RETURNING 1)
        SELECT extract(epoch FROM clock_timestamp()) FROM (SELECT count(*) FROM j) c;
        NOTIFY sluice_jobs;""")
    # The end time is the last job's finalized_at, so polling seldom costs no accuracy; the
    # poll asks the cheapest question (are jobs left?) so it takes little from what it measures.
    deadline = time.time() + 600
    while time.time() < deadline:
        time.sleep(0.5)
        left = psql(db_url, "SELECT EXISTS (SELECT 1 FROM sluice.jobs WHERE kind = 'noop' AND state IN "
                            "('available', 'scheduled', 'running', 'retryable'))")
        if left == "f":
            break
    else:
        die(f"no-op jobs still not finished after 600 s")
    done = int(psql(db_url, "SELECT count(*) FROM sluice.jobs WHERE kind = 'noop' AND state = 'completed'"))
    if done != count:
        die(f"only {done} of {count} no-op jobs completed")
    last = float(psql(db_url, "SELECT extract(epoch FROM max(finalized_at)) FROM sluice.jobs WHERE kind = 'noop'"))
    start = float(started.splitlines()[0])
    twice = int(psql(db_url, "SELECT count(*) FROM sluice.jobs WHERE kind = 'noop' AND attempt <> 1"))
    print(json.dumps({"jobs": count, "seconds": round(last - start, 3),
                      "jobs_per_s": round(count / (last - start), 1), "retried": twice}))


def cmd_delay(db_url, count, gap_ms):
    """Inserts COUNT rows into app.pings, one transaction each, GAP_MS apart; waits for their
    trigger jobs to start, and prints the delay from each change to its job's first attempt."""
    count, gap = int(count), float(gap_ms) / 1000.0
    script = "".join(f"INSERT INTO app.pings (n) VALUES ({i}); SELECT pg_sleep({gap});\n"
                     for i in range(count))
    subprocess.run(["psql", db_url, "-XAtq", "-v", "ON_ERROR_STOP=1"], input=script, check=True,
                   capture_output=True, text=True)
    deadline = time.time() + 120
    q = """SELECT count(*) FROM sluice.jobs j JOIN sluice.job_attempts a ON a.job_id = j.id
           WHERE j.kind = 'on_ping' AND a.attempt = 1"""
    while time.time() < deadline and int(psql(db_url, q)) < count:
        time.sleep(0.2)
    row = psql(db_url, """
        SELECT count(*),
               round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d) * 1000)::numeric, 1),
               round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d) * 1000)::numeric, 1),
               round((max(d) * 1000)::numeric, 1)
        FROM (SELECT extract(epoch FROM a.started_at - c.at) AS d
              FROM sluice.changes c
              JOIN sluice.jobs j ON j.unique_key = 'change:' || c.id || ':on_ping'
              JOIN sluice.job_attempts a ON a.job_id = j.id AND a.attempt = 1
              WHERE c.table_name = 'pings') t""")
    n, p50, p99, worst = row.split("|")
    print(json.dumps({"changes": int(n), "p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(worst)}))


def cmd_report(noop1, noop2, plain, enqueue, delay):
    n1, n2, d = json.loads(noop1), json.loads(noop2), json.loads(delay)
    p, e = float(plain), float(enqueue)
    print()
    print("| measure | figure | aim |")
    print("|---|---|---|")
    print(f"| no-op jobs/s, one instance | {n1['jobs_per_s']} ({n1['jobs']} jobs in {n1['seconds']} s) | ≥ 2,000 |")
    print(f"| no-op jobs/s, two instances | {n2['jobs_per_s']} ({n2['jobs']} jobs in {n2['seconds']} s) | |")
    print(f"| insert endpoint req/s without / with job.enqueue | {p:.0f} / {e:.0f} (ratio {e / p:.2f}, cost {100 * (1 - e / p):.1f}%) | cost ≤ 10% |")
    print(f"| table change → trigger flow start, p50 / p99 / max | {d['p50_ms']} / {d['p99_ms']} / {d['max_ms']} ms ({d['changes']} changes) | p50 < 20 ms, p99 < 100 ms |")


if __name__ == "__main__":
    commands = {"setup": cmd_setup, "noop": cmd_noop, "delay": cmd_delay, "report": cmd_report}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        die(f"usage: helper.py {'|'.join(commands)} ...")
    commands[sys.argv[1]](*sys.argv[2:])
