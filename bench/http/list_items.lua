-- GET <BASE><LIST_QUERY>: the first page of twenty rows. bench/http.sh prepends BASE and
-- LIST_QUERY (`?limit=20`; PocketBase's `?perPage=20&skipTotal=1` or `?perPage=20`).
wrk.method = "GET"
wrk.path = BASE .. LIST_QUERY
