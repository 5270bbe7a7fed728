-- POST /events/{id}/bookings as many users: a bearer token per user, a unique Idempotency-Key
-- per request, quantity 1. Arguments (after --): events file, tokens file, seconds, request
-- budget (0: none), wrk threads, key prefix ("-": send no Idempotency-Key).
-- One event in the file: every request books it (hot, sell-out storm); many: a random one each.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")

local request_lines = {}   -- "POST /events/<id>/bookings HTTP/1.1\r\nHost: ...\r\n", per event
local authorizations = {}  -- "Authorization: Bearer <token>\r\n", per user
local key_prefix = nil
local n = 0
local threads_total = 1
local BODY = '{"quantity":1}'
local FIXED = "Content-Type: application/json\r\nContent-Length: " .. #BODY .. "\r\n"

function init(args)
   local host = wrk.headers["Host"]
   for line in io.lines(args[1]) do
      request_lines[#request_lines + 1] =
         "POST /events/" .. line .. "/bookings HTTP/1.1\r\nHost: " .. host .. "\r\n"
   end
   for line in io.lines(args[2]) do
      authorizations[#authorizations + 1] = "Authorization: Bearer " .. line .. "\r\n"
   end
   assert(#request_lines > 0 and #authorizations > 0, "empty events or tokens file")
   bench_init(args[3], args[4], args[5])
   threads_total = tonumber(args[5]) or 1
   if args[6] ~= "-" then  -- "-": no Idempotency-Key at all
      key_prefix = args[6] .. "-t" .. id .. "-"
   end
end

function request()
   n = n + 1
   -- threads interleave over the users, so every user books about as often as any other
   local user = (n * threads_total + id) % #authorizations + 1
   local line = request_lines[1]
   if #request_lines > 1 then
      line = request_lines[math.random(#request_lines)]
   end
   if key_prefix == nil then
      return line .. authorizations[user] .. FIXED .. "\r\n" .. BODY
   end
   return line .. authorizations[user] .. FIXED .. "Idempotency-Key: " .. key_prefix .. n
      .. "\r\n\r\n" .. BODY
end
