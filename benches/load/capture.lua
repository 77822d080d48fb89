-- wrk script: POST /webhook/lead with a different lead each request (a
-- fresh e-mail, so every request is a real capture, not a replay).
-- Optional pacing: set RATE (requests per second for the whole run) and
-- CONNECTIONS to spread it over the connections. wrk counts the delay in
-- the latency it reports, so paced runs give rates, not latencies.

local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_id)
  table.insert(threads, thread)
  thread_id = thread_id + 1
end

function init(args)
  math.randomseed(os.time() + id)
  run = tostring(os.time())
  rate = tonumber(os.getenv("RATE") or "0")
  conns = tonumber(os.getenv("CONNECTIONS") or "1")
end

function delay()
  if rate > 0 then
    -- Each connection sends rate/conns per second.
    return 1000 * conns / rate
  end
  return 0
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"email":"load%s.%d.%d@example%d.com","first_name":"Load","last_name":"Test%d",' ..
    '"company":"Bench %d SL","phone":"+3461%07d","source":"web",' ..
    '"message":"We need a demo for 50 users this quarter"}',
    run, id, counter, counter % 97, counter, counter % 500, (id * 1000003 + counter) % 10000000)
  return wrk.format("POST", "/webhook/lead", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 202 then
    errors = (errors or 0) + 1
  end
end

function done(summary, latency, requests)
  local non202 = 0
  for _, t in ipairs(threads) do
    non202 = non202 + (t:get("errors") or 0)
  end
  io.write(string.format("non_202=%d\n", non202))
  io.write(string.format("p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
