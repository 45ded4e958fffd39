-- GET /api/items?limit=20: the first page of twenty rows.
wrk.method = "GET"
wrk.path = "/api/items?limit=20"
