-- GET /events/{id} for a random event of the file. Arguments (after --): events file, seconds,
-- request budget (0: none), wrk threads.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")

local requests = {}

function init(args)
   local host = wrk.headers["Host"]
   for line in io.lines(args[1]) do
      requests[#requests + 1] = "GET /events/" .. line .. " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   end
   assert(#requests > 0, "empty events file")
   bench_init(args[2], args[3], args[4])
end

function request()
   return requests[math.random(#requests)]
end
