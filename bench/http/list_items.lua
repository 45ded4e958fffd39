-- GET <BASE><LIST_QUERY>: the first page of twenty rows. bench/http.sh prepends BASE and
-- LIST_QUERY (`?limit=20`; PocketBase's `?perPage=20&skipTotal=1` or `?perPage=20`), and
-- TOKEN (nil, or an end-user token sent as a bearer token).
wrk.method = "GET"
wrk.path = BASE .. LIST_QUERY
if TOKEN then
   wrk.headers["Authorization"] = "Bearer " .. TOKEN
end
