-- POST /api/items with a small JSON body; every request inserts one row.
wrk.method = "POST"
wrk.path = "/api/items"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "benchmark item", "qty": 3, "price": 12.5, "active": true}'
