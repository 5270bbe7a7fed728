-- Shared by book.lua and get.lua (loaded with dofile): a bounded load, per-status counts and
-- one JSON line for the harness (bench/load.py).
--
-- Bounds: each thread sends requests until its deadline (`seconds` after its first request)
-- or until it has sent its share of `budget` requests (0: no budget), then parks its
-- connections (delay() returns an hour). Once every request it sent is answered it prints
-- BENCH_THREAD_DONE; when all threads have, the harness stops wrk with SIGINT. So every
-- request sent is answered before wrk stops, and the 201s counted here can be compared
-- exactly with the rows the database gained.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_REALTIME = 0
local timespec = ffi.new("bench_timespec")

local function now()
   ffi.C.clock_gettime(CLOCK_REALTIME, timespec)
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

-- main state: one handle per thread, to collect their counters in done()
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

-- thread state (globals, so that thread:get() can read them)
sent = 0          -- requests released by delay(): each one is then written by wrk
answered = 0      -- responses received
statuses = {}     -- status code -> count
in_window = {}    -- status code -> count of answers received before the deadline
first_send = 0    -- epoch seconds
last_answer = 0
local seconds, budget, deadline = nil, nil, nil
local announced = false

function bench_init(seconds_arg, budget_arg, threads_arg)
   seconds = tonumber(seconds_arg)
   local total, count = tonumber(budget_arg) or 0, tonumber(threads_arg) or 1
   if total > 0 then
      budget = math.floor(total / count) + ((id < total % count) and 1 or 0)
   end
   math.randomseed(os.time() + 7919 * id)
end

local function finished(t)
   return t >= deadline or (budget ~= nil and sent >= budget)
end

local function announce_if_done(t)
   if not announced and answered >= sent and finished(t) then
      announced = true
      io.write("BENCH_THREAD_DONE\n")
      io.stdout:flush()
   end
end

-- wrk calls delay() once before each request it writes (and request() once more, at start,
-- only to check the script: that call is not counted).
function delay()
   local t = now()
   if deadline == nil then
      deadline = t + seconds
      first_send = t
   end
   if finished(t) then
      announce_if_done(t)
      return 3600000
   end
   sent = sent + 1
   return 0
end

function response(status, headers, body)
   local t = now()
   answered = answered + 1
   last_answer = t
   statuses[status] = (statuses[status] or 0) + 1
   if t < deadline then
      in_window[status] = (in_window[status] or 0) + 1
   end
   announce_if_done(t)
end

local function json_counts(counts)
   local parts = {}
   for status, count in pairs(counts) do
      table.insert(parts, string.format('"%d":%d', status, count))
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

local function merge(into, counts)
   for status, count in pairs(counts) do
      into[status] = (into[status] or 0) + count
   end
end

function done(summary, latency, requests)
   local total_sent, total_answered, first, last = 0, 0, math.huge, 0
   local all, window = {}, {}
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      total_answered = total_answered + thread:get("answered")
      merge(all, thread:get("statuses"))
      merge(window, thread:get("in_window"))
      local f, l = thread:get("first_send"), thread:get("last_answer")
      if f > 0 and f < first then first = f end
      if l > last then last = l end
   end
   if first == math.huge then first = 0 end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"sent":%d,"answered":%d,"statuses":%s,"in_window":%s,'
         .. '"first_send":%.6f,"last_answer":%.6f,"requests":%d,"duration_us":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,'
         .. '"p99":%d,"p999":%d}}\n',
      total_sent, total_answered, json_counts(all), json_counts(window),
      first, last, summary.requests, summary.duration,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(95),
      latency:percentile(99), latency:percentile(99.9)))
end
