-- GET <BASE>/{id} with an id drawn uniformly from the 10,000 seeded rows. The seed is fixed
-- per thread so every server is asked the same sequence of rows. bench/http.sh prepends
-- BASE (the collection's path) and IDS (nil, or a file whose line n is the id of row n, for
-- servers whose ids are not 1 to 10,000: PocketBase) and TOKEN (nil, or an end-user token sent as
-- a bearer token).
local rows = 10000
if TOKEN then
   wrk.headers["Authorization"] = "Bearer " .. TOKEN
end
local ids = nil
function init(args)
   math.randomseed(12345)
   if IDS then
      ids = {}
      for line in io.lines(IDS) do
         ids[#ids + 1] = line
      end
   end
end
function request()
   local n = math.random(1, rows)
   return wrk.format("GET", BASE .. "/" .. (ids and ids[n] or n))
end
