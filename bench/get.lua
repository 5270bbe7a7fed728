-- GET a random path of the file (one path a line: /healthz, /events/<id>, /events?limit=20).
-- Arguments (after --): paths file, seconds, request budget (0: none), wrk threads.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")

local requests = {}

function init(args)
   local host = wrk.headers["Host"]
   for line in io.lines(args[1]) do
      requests[#requests + 1] = "GET " .. line .. " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   end
   assert(#requests > 0, "empty paths file")
   bench_init(args[2], args[3], args[4])
end

function request()
   return requests[math.random(#requests)]
end
