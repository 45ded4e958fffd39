-- POST <BASE> with a small JSON body; every request inserts one row. bench/http.sh prepends
-- BASE.
wrk.method = "POST"
wrk.path = BASE
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "benchmark item", "qty": 3, "price": 12.5, "active": true}'
