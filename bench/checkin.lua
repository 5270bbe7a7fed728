-- POST /events/{id}/checkins {"code": ...} as the event's organizer (the gates of a stadium).
-- Arguments (after --): codes file (its first line the path, "/events/<id>/checkins", then one
-- signed ticket code a line), the organizer's token file, seconds, request budget (0: none),
-- wrk threads. Each thread scans its own share of the codes (every threads-th line), each once;
-- a thread that runs out starts its share again: those scans are of used tickets (409).
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")

local requests = {}  -- the whole request of each code of this thread's share
local n = 0

function init(args)
   local host = wrk.headers["Host"]
   local threads_total = tonumber(args[5]) or 1
   local token = io.open(args[2]):read("*l")
   local head, index = nil, 0
   for line in io.lines(args[1]) do
      if head == nil then
         head = "POST " .. line .. " HTTP/1.1\r\nHost: " .. host .. "\r\nAuthorization: Bearer "
            .. token .. "\r\nContent-Type: application/json\r\n"
      elseif line ~= "" then
         if index % threads_total == id then
            local body = '{"code":"' .. line .. '"}'
            requests[#requests + 1] = head .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
         end
         index = index + 1
      end
   end
   assert(head ~= nil and #requests > 0, "no check-in path or no codes for this thread")
   bench_init(args[3], args[4], args[5])
end

function request()
   n = n + 1
   return requests[(n - 1) % #requests + 1]
end
