#!/usr/bin/env python3
"""The HTTP steps of bench/http.sh that are easier in Python than in curl: seeding, signing in,
publishing, checking that every server answers the same, setting PocketBase up, publishing
during load, and printing the report. Standard library only. Every failure exits non-zero with
a message, so the benchmark stops loudly.

    helper.py csv OUT                                  the 10,000 seeded rows as CSV
    helper.py login URL EMAIL PASSWORD                 prints an admin API token
    helper.py create-table URL TOKEN TABLE_JSON        table + generated CRUD, published, public
    helper.py publish-flows URL TOKEN DIR PREFIX       hand-drawn flows, paths moved under PREFIX
    helper.py republish URL TOKEN FLOW VERSION         publish FLOW again, answering header
                                                       x-bench-version: VERSION
    helper.py publish-loop URL TOKEN FLOW COUNT SECONDS OUT
    helper.py wait-version PATH VERSION URL...         every instance serves VERSION
    helper.py check BASELINE GENERATED FLOWS [PB PB_IDS]
    helper.py pb-setup URL EMAIL PASSWORD IDS_OUT      PocketBase collection + the same rows
    helper.py report RESULTS EXTRA_JSON                the tables
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from decimal import Decimal

ROWS = 10000


def die(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def call(method, url, body=None, token=None, headers=None, raw=None):
    """One request; returns (status, headers, parsed JSON body or None)."""
    h = {"content-type": "application/json"}
    if token:
        h["authorization"] = f"Bearer {token}"
    h.update(headers or {})
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, method=method, data=data, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            status, hdrs = r.status, r.headers
    except urllib.error.HTTPError as e:
        text, status, hdrs = e.read(), e.code, e.headers
    try:
        parsed = json.loads(text, parse_float=Decimal) if text else None
    except ValueError:
        parsed = text.decode(errors="replace")
    return status, hdrs, parsed


def must(expected, result, what):
    status, _, body = result
    if status != expected:
        die(f"{what}: expected {expected}, got {status}: {body}")
    return body


def seeded(i):
    """Row i (1-based) of the seed, the same for every server."""
    return {
        "title": f"item {i}",
        "qty": i % 100,
        "price": f"{i % 1000}.{i % 100:02d}",
        "active": i % 3 != 0,
    }


def cmd_csv(out):
    with open(out, "w") as f:
        f.write("title,qty,price,active\n")
        for i in range(1, ROWS + 1):
            r = seeded(i)
            f.write(f"{r['title']},{r['qty']},{r['price']},{'true' if r['active'] else 'false'}\n")


def cmd_login(url, email, password):
    body = must(200, call("POST", f"{url}/_/api/v1/auth/login",
                          {"email": email, "password": password}), "sign-in")
    print(body["token"])


def cmd_create_table(url, token, table_json):
    """The table with its generated CRUD endpoints, as the editor's "create with endpoints"
    does: published, public (PocketBase's rules are public too)."""
    with open(table_json) as f:
        table = json.load(f)
    body = must(201, call("POST", f"{url}/_/api/v1/tables?crud=publish&crud_auth=public",
                          table, token), "create table with CRUD")
    for flow in body["flows"]:
        print(f"   {flow['method'] or '-':6} /api{flow['path']}  ({flow['name']}, "
              f"version {flow['published_version']})")


def cmd_publish_flows(url, token, directory, prefix):
    import os
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".flow.json"):
            continue
        with open(os.path.join(directory, name)) as f:
            doc = json.load(f)
        doc["endpoint"]["path"] = prefix + doc["endpoint"]["path"]
        record = must(201, call("POST", f"{url}/_/api/v1/flows", doc, token), f"save {name}")
        out = must(200, call("POST", f"{url}/_/api/v1/flows/{record['id']}/publish", None, token),
                   f"publish {name}")
        print(f"   {out['method']:6} {out['url']}  ({out['name']}, version {out['version']})")


def cmd_setup_rules(url, token, directory):
    """The access-rules comparison: the table `owned` (with its rules, no endpoints), the
    token flow at /api/bench/token, and each other flow of `directory` twice, as drawn under
    /api/ruled and with `rules.bypass` on its database node under /api/bypass. Prints an
    end-user token for user 1."""
    import os
    with open(os.path.join(directory, "owned.table.json")) as f:
        must(201, call("POST", f"{url}/_/api/v1/tables", json.load(f), token), "create owned")

    def publish(doc, what):
        record = must(201, call("POST", f"{url}/_/api/v1/flows", doc, token), f"save {what}")
        out = must(200, call("POST", f"{url}/_/api/v1/flows/{record['id']}/publish", None, token),
                   f"publish {what}")
        print(f"   {out['method']:6} {out['url']}  ({out['name']}, version {out['version']})",
              file=sys.stderr)

    for name in sorted(os.listdir(directory)):
        if not name.endswith(".flow.json"):
            continue
        with open(os.path.join(directory, name)) as f:
            doc = json.load(f)
        if doc["name"] == "bench_token":
            doc["endpoint"]["path"] = "/bench" + doc["endpoint"]["path"]
            publish(doc, name)
            continue
        ruled = json.loads(json.dumps(doc))
        ruled["endpoint"]["path"] = "/ruled" + doc["endpoint"]["path"]
        publish(ruled, name)
        doc["name"] += "_bypass"
        doc["endpoint"]["path"] = "/bypass" + doc["endpoint"]["path"]
        doc["nodes"]["load"]["rules"] = {"bypass": "the benchmark's unruled twin"}
        publish(doc, name + " (bypass)")
    print(must(200, call("POST", f"{url}/api/bench/token"), "end-user token"))


def cmd_check_rules(url, user_token):
    """The ruled and the bypassing flows answer the same rows (those of items, plus owner)."""
    for path in ("/items/1", "/items/4242", "/items/10000", "/items?limit=20"):
        ruled = must(200, call("GET", f"{url}/api/ruled{path}", token=user_token), f"ruled {path}")
        bypass = must(200, call("GET", f"{url}/api/bypass{path}", token=user_token),
                      f"bypass {path}")
        plain = must(200, call("GET", f"{url}/api/flows{path}"), f"flows {path}")
        same(ruled, bypass, f"ruled and bypass {path}")
        strip = (lambda r: {k: v for k, v in r.items() if k not in ("owner", "created_at", "updated_at")})
        rows = lambda b: b["items"] if isinstance(b, dict) and "items" in b else [b]
        same([strip(r) for r in rows(ruled)], [strip(r) for r in rows(plain)], f"ruled and items {path}")
    print("   ruled and bypass answer the same rows as items")


def flow_id(url, token, name):
    flows = must(200, call("GET", f"{url}/_/api/v1/flows", None, token), "list flows")["flows"]
    for f in flows:
        if f["name"] == name:
            return f["id"]
    die(f"no flow named {name}")


def republish(url, token, fid, version):
    """Saves a new draft of the flow whose respond nodes send `x-bench-version: VERSION`, and
    publishes it. Returns the publish's status."""
    status, hdrs, record = call("GET", f"{url}/_/api/v1/flows/{fid}", None, token)
    if status != 200:
        return status
    doc = record["document"]
    for node in doc["nodes"].values():
        if node.get("type") == "respond":
            node.setdefault("headers", {})["x-bench-version"] = str(version)
    status, _, _ = call("PUT", f"{url}/_/api/v1/flows/{fid}", doc, token,
                        {"if-match": hdrs["etag"]})
    if status != 200:
        return status
    status, _, _ = call("POST", f"{url}/_/api/v1/flows/{fid}/publish", None, token)
    return status


def cmd_republish(url, token, flow, version):
    status = republish(url, token, flow_id(url, token, flow), version)
    if status != 200:
        die(f"publish of {flow}: {status}")


def cmd_publish_loop(url, token, flow, count, seconds, out):
    """COUNT publishes spread evenly over SECONDS (run while wrk loads the flow)."""
    fid = flow_id(url, token, flow)
    count, seconds = int(count), float(seconds)
    statuses = []
    for k in range(1, count + 1):
        time.sleep(seconds / (count + 1))
        statuses.append(republish(url, token, fid, f"load-{k}"))
    with open(out, "w") as f:
        json.dump({"statuses": statuses, "last": f"load-{count}"}, f)


def cmd_wait_version(path, version, *urls):
    """Every instance answers PATH with the new version's header; prints how long it took."""
    start = time.monotonic()
    for url in urls:
        while True:
            status, hdrs, _ = call("GET", url + path)
            if status == 200 and hdrs.get("x-bench-version") == version:
                break
            if time.monotonic() - start > 15:
                die(f"{url}{path} still answers {status} with version "
                    f"{hdrs.get('x-bench-version')!r}, not {version!r}, 15 s after the publish")
            time.sleep(0.01)
    print(f"{(time.monotonic() - start) * 1000:.0f}")


# ---- answers -------------------------------------------------------------------------------

def norm(v):
    """A JSON value with timestamps as instants and numbers as decimals, so that `12.50` and
    `12.5`, or `+00:00` and `Z`, compare equal."""
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
        return Decimal(v)
    if isinstance(v, str) and len(v) >= 20 and v[4] == "-" and v[10] in "T ":
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return v
    return v


def same(a, b, what):
    if norm(a) != norm(b):
        die(f"{what} differs:\n  baseline: {json.dumps(a, default=str)}\n"
            f"  other:    {json.dumps(b, default=str)}")


def cmd_check(base, generated, flows, pb=None, pb_ids=None):
    item = {"title": "check", "qty": 1, "price": 2.5, "active": False}
    strip = lambda r: {k: v for k, v in r.items() if k not in ("id", "created_at", "updated_at")}
    for name, root in (("generated", generated), ("flows", flows)):
        for path in ("/1", "/10000", "?limit=20", ""):
            a = must(200, call("GET", f"{base}/api/items{path}"), f"baseline GET {path}")
            b = must(200, call("GET", f"{root}{path}"), f"{name} GET {path}")
            same(a, b, f"{name} GET {path}")
        must(404, call("GET", f"{root}/99999999"), f"{name} GET of a missing row")
        a = must(201, call("POST", f"{base}/api/items", item), "baseline POST")
        b = must(201, call("POST", f"{root}", item), f"{name} POST")
        if a.keys() != b.keys():
            die(f"{name} POST: fields {sorted(b)} but baseline {sorted(a)}")
        same(strip(a), strip(b), f"{name} POST")
    must(404, call("GET", f"{base}/api/items/99999999"), "baseline GET of a missing row")
    print("   generated CRUD and hand-drawn flows answer as the baseline: GET by id (2 rows, 404),"
          " list (default and ?limit=20), POST")
    if pb:
        ids = open(pb_ids).read().split()
        records = f"{pb}/api/collections/items/records"
        for i in (1, ROWS):
            r = must(200, call("GET", f"{records}/{ids[i - 1]}"), f"PocketBase GET row {i}")
            want = seeded(i)
            got = {k: r[k] for k in want}
            if norm(got) != norm({**want, "price": Decimal(want["price"])}):
                die(f"PocketBase row {i}: {got}, expected {want}")
        page = must(200, call("GET", f"{records}?perPage=20&skipTotal=1"), "PocketBase list")
        if len(page["items"]) != 20:
            die(f"PocketBase list: {len(page['items'])} items")
        must(404, call("GET", f"{records}/{'x' * 15}"), "PocketBase GET of a missing record")
        r = must(200, call("POST", records, item), "PocketBase POST")
        if r["title"] != "check":
            die(f"PocketBase POST: {r}")
        print("   PocketBase: GET by id (2 rows, same values; 404), list of 20, POST")


# ---- PocketBase ----------------------------------------------------------------------------

def cmd_pb_setup(url, email, password, ids_out):
    token = must(200, call("POST", f"{url}/api/collections/_superusers/auth-with-password",
                           {"identity": email, "password": password}),
                 "PocketBase superuser sign-in")["token"]
    # The batch API is off by default; it only speeds up the seeding. Rate limits stay as they
    # are (off by default).
    must(200, call("PATCH", f"{url}/api/settings",
                   {"batch": {"enabled": True, "maxRequests": 500, "timeout": 30,
                              "maxBodySize": 64 << 20}}, token), "PocketBase settings")
    collection = {
        "name": "items", "type": "base",
        "listRule": "", "viewRule": "", "createRule": "",
        "fields": [
            {"name": "title", "type": "text", "required": True},
            {"name": "qty", "type": "number", "onlyInt": True},
            {"name": "price", "type": "number"},
            {"name": "active", "type": "bool"},
            {"name": "created", "type": "autodate", "onCreate": True},
            {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
        ],
    }
    must(200, call("POST", f"{url}/api/collections", collection, token), "PocketBase collection")
    ids = []
    for start in range(1, ROWS + 1, 500):
        requests = []
        for i in range(start, min(start + 500, ROWS + 1)):
            row = seeded(i)
            row["price"] = float(row["price"])
            requests.append({"method": "POST", "url": "/api/collections/items/records",
                             "body": row})
        out = must(200, call("POST", f"{url}/api/batch", {"requests": requests}, token),
                   "PocketBase batch import")
        for r in out:
            if r["status"] != 200:
                die(f"PocketBase batch import: {r}")
            ids.append(r["body"]["id"])
    with open(ids_out, "w") as f:
        f.write("\n".join(ids) + "\n")


# ---- report --------------------------------------------------------------------------------

ENDPOINTS = {"get_item": "GET by id", "list_items": "list of 20", "create_item": "POST"}
SERVERS = {
    "baseline": "axum + sqlx (baseline)",
    "generated": "Sluice, generated CRUD",
    "flows": "Sluice, hand-drawn flows",
    "pocketbase": "PocketBase",
    "pocketbase_total": "PocketBase, with total",
    "bypass": "Sluice, flow on owned, rules.bypass",
    "ruled": "Sluice, flow on owned, owner-only rule",
}


def cmd_report(results, extra_json):
    extra = json.load(open(extra_json))
    rows = {}
    for line in open(results):
        f = line.split()
        rows.setdefault(f[0], {})[f[1]] = {
            "rps": float(f[4]), "p50": int(f[5]) / 1000, "p99": int(f[6]) / 1000,
            "errors": int(f[7]) + int(f[8]), "rss": int(f[9]) / 1024,
            # The server's CPU (user + system) per request, in µs.
            "cpu": int(f[10]) / int(os.environ.get("CLK_TCK", "100")) * 1e6 / max(int(f[2]), 1),
        }
    print()
    print("| endpoint | server | req/s | p50 ms | p99 ms | errors | req/s ÷ baseline | "
          "p99 ÷ baseline | server CPU µs/request | Sluice RSS under load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    bad = []
    for ep, by in rows.items():
        b = by.get("baseline")
        for server, r in by.items():
            if server == "baseline":
                ratio = p99 = "1.00"
            elif b:
                ratio, p99 = f"{r['rps'] / b['rps']:.2f}", f"{r['p99'] / b['p99']:.2f}"
            else:
                ratio = p99 = "–"
            rss = f"{r['rss']:.1f} MiB" if server in ("generated", "flows", "ruled", "bypass") else ""
            print(f"| {ENDPOINTS.get(ep, ep)} | {SERVERS.get(server, server)} | {r['rps']:,.0f} | "
                  f"{r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} | {ratio} | {p99} | "
                  f"{r['cpu']:.0f} | {rss} |")
            if r["errors"]:
                bad.append(f"{ep} on {server}")
    ruled = {ep: by for ep, by in rows.items() if "ruled" in by and "bypass" in by}
    if ruled:
        print()
        print("Access rules: the same flow on the same rows with the table's owner-only rule "
              "applied (ruled) and with `rules.bypass` (bypass), signed in as the rows' owner:")
        print()
        print("| endpoint | ruled req/s | bypass req/s | ruled ÷ bypass req/s | "
              "ruled ÷ bypass p99 | CPU µs/request ruled / bypass |")
        print("|---|---:|---:|---:|---:|---:|")
        for ep, by in ruled.items():
            r, b = by["ruled"], by["bypass"]
            print(f"| {ENDPOINTS.get(ep, ep)} | {r['rps']:,.0f} | {b['rps']:,.0f} | "
                  f"{r['rps'] / b['rps']:.3f} | {r['p99'] / b['p99']:.3f} | "
                  f"{r['cpu']:.0f} / {b['cpu']:.0f} |")
    print()
    mem = extra["memory"]
    print("Resident memory (MiB): Sluice " + ", ".join(f"{k} {v}" for k, v in mem["sluice"]) +
          "; peak (VmHWM) over the whole run: " +
          ", ".join(f"{k} {v}" for k, v in mem["peaks"]))
    two = extra.get("two_instances")
    if two:
        print()
        print(f"Two Sluice instances on the same Postgres, generated CRUD: two wrk processes, each "
              f"-t{two['threads']} -c{two['connections']}, both on one instance, then one on "
              f"each of two instances; req/s summed, latencies the worse of the two:")
        print()
        print("| endpoint | instances | req/s | p50 ms | p99 ms | errors | two ÷ one |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for ep, by in two["rows"].items():
            for layout, count in (("one", 1), ("two", 2)):
                r = by[layout]
                ratio = f"{r['rps'] / by['one']['rps']:.2f}" if layout == "two" else ""
                print(f"| {ENDPOINTS.get(ep, ep)} | {count} | {r['rps']:,.0f} | {r['p50']:.2f} | "
                      f"{r['p99']:.2f} | {r['errors']} | {ratio} |")
                if r["errors"]:
                    bad.append(f"{ep} on {count} instance(s)")
    pub = extra.get("publish")
    if pub:
        print()
        print(f"Publish during load: {len(pub['statuses'])} publishes of `items_get` (statuses "
              f"{', '.join(map(str, pub['statuses']))}) while wrk loaded GET by id on "
              f"{pub['instances']} instance(s): {pub['rps']:,.0f} req/s, {pub['errors']} errors; "
              f"every instance served the last version ({pub['last']}) {pub['converged_ms']} ms "
              f"after the last publish returned.")
        if pub["errors"] or any(s != 200 for s in pub["statuses"]):
            bad.append("publish during load")
    cold = extra.get("cold")
    if cold:
        print()
        print("First requests (GET by id of the generated CRUD, curl `time_total`, ms), as a ratio "
              "to the steady p50 under load (wrk) and to a warm single curl (median of "
              f"{cold['warm_n']}: {cold['warm']:.2f} ms):")
        print()
        print("| case | each run, ms | worst ÷ wrk p50 | worst ÷ warm curl |")
        print("|---|---|---:|---:|")
        p50 = rows.get("get_item", {}).get("generated", {}).get("p50")
        for case, times in (("first request after a restart (after /readyz is 200)", cold["restart"]),
                            ("first request after a publish", cold["publish"])):
            worst = max(times)
            to_p50 = f"{worst / p50:.2f}" if p50 else "–"
            print(f"| {case} | {', '.join(f'{t:.2f}' for t in times)} | "
                  f"{to_p50} | {worst / cold['warm']:.2f} |")
    print()
    print(f"load average before / after: {extra['load_before']} / {extra['load_after']}")
    if extra.get("skipped"):
        print(f"SKIPPED: {extra['skipped']}")
    if bad:
        print()
        print("FAILED: errors (non-2xx or socket errors) in: " + "; ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    commands = {k[4:].replace("_", "-"): v for k, v in globals().items() if k.startswith("cmd_")}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        die(f"usage: helper.py {'|'.join(commands)} ...")
    commands[sys.argv[1]](*sys.argv[2:])
