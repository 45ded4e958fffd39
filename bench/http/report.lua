-- Appended to each request script: one machine-readable line for bench/http.sh.
-- Latencies are in microseconds; "non2xx" counts responses with a status of 400 or more
-- (wrk's status errors), "socket" the connect, read, write and timeout errors.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("RESULT %d %d %.1f %d %d %d %d\n",
      summary.requests, summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99),
      e.status, e.connect + e.read + e.write + e.timeout))
end
