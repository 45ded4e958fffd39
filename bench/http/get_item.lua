-- GET /api/items/{id} with an id drawn uniformly from the 10,000 seeded rows.
-- The seed is fixed per thread so both servers are asked the same sequence of ids.
local rows = 10000
function init(args)
   math.randomseed(12345)
end
function request()
   return wrk.format("GET", "/api/items/" .. math.random(1, rows))
end
