-- bench/wrk/put.lua: wrk's side of the outside-generator check (bench/wrk/run.sh).
--
--   wrk -t2 -c64 -d20s -s bench/wrk/put.lua http://127.0.0.1:8080 -- 2
--
-- Every request is a PUT /v1/profiles/p-P/positions/v-V with P uniform over
-- PLAYHEAD_WRK_PROFILES (default 100000) and V over PLAYHEAD_WRK_VIDEOS
-- (default 20); one device per profile (d-P-0, session s-P-0-V), the body
-- playhead-bench's put workload sends. Versions (epoch = seq) are stamped as
-- the SDK does: physical ms in the high 48 bits, a counter in the low 16. The
-- argument after "--" is wrk's thread count: thread T writes only profiles
-- with P mod threads = T, so each device's versions grow (no 409 from two
-- threads racing on one cursor). The token (PLAYHEAD_WRK_TOKEN) is one
-- account's, good for all its profiles.

local token = os.getenv("PLAYHEAD_WRK_TOKEN")
local profiles = tonumber(os.getenv("PLAYHEAD_WRK_PROFILES") or "100000")
local videos = tonumber(os.getenv("PLAYHEAD_WRK_VIDEOS") or "20")

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local nthreads, headers
local lastMs, lastLow = 0, 0

function init(args)
  if not token or token == "" then
    error("PLAYHEAD_WRK_TOKEN is not set")
  end
  nthreads = tonumber(args[1] or "1")
  math.randomseed(os.time() * 1000 + tid)
  headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end

-- version returns the next HLC of this thread as a decimal string (the
-- thread's own devices only need its versions to grow). Lua
-- numbers are doubles, exact only to 2^53, and an HLC is about 2^57: the
-- product ms * 65536 + low is written as hi * 10^6 + lo.
local function version()
  -- os.time() has whole seconds: the next second, so that versions stay
  -- above those playhead-bench stamped from the real clock in the round
  -- before (1 s ahead is well within the node's max_clock_skew of 60 s).
  local ms = (os.time() + 1) * 1000
  if ms > lastMs then
    lastMs, lastLow = ms, 0
  else
    lastLow = lastLow + 1
    if lastLow >= 65536 then -- the counter's 16 bits are full: carry
      lastMs, lastLow = lastMs + 1, 0
    end
  end
  local a, b = math.floor(lastMs / 1000000), lastMs % 1000000
  local hi, lo = a * 65536, b * 65536 + lastLow
  hi, lo = hi + math.floor(lo / 1000000), lo % 1000000
  return string.format("%.0f%06d", hi, lo)
end

function request()
  local p = math.random(0, math.floor((profiles - 1 - tid) / nthreads)) * nthreads + tid
  local v = math.random(0, videos - 1)
  local ver = version()
  local body = string.format(
    '{"position_ms":%d,"duration_ms":2700000,"state":"playing","device":"d-%d-0","session":"s-%d-0-%d","epoch":"%s","seq":"%s"}',
    math.random(0, 2699999), p, p, v, ver, ver)
  return wrk.format("PUT", string.format("/v1/profiles/p-%d/positions/v-%d", p, v), headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-result requests %d seconds %.3f rps %.0f p50_ms %.2f p99_ms %.2f non2xx %d socket_errors %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
