-- wrk script for bench/run.ts. Configured by environment variables (set by bench/load.ts):
--   BENCH_METHOD   GET (default) or POST
--   BENCH_HEADERS  extra headers, one "Name: value" per line (e.g. the session cookie)
--   BENCH_BODIES   request bodies separated by "\n"; with BENCH_XFF, body i goes with address i
--   BENCH_XFF      X-Forwarded-For values separated by "\n" (one simulated client per body)
--   BENCH_DELAY_MS pause before each request on a connection (paced latency probe); 0 = none
-- `done` prints one JSON line that bench/load.ts parses. Latencies are in microseconds.

local requests = {}
local nextIndex = 1
local delayMs = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

local function lines(s)
  local out = {}
  if s == nil or s == "" then return out end
  for line in (s .. "\n"):gmatch("(.-)\n") do
    if line ~= "" then table.insert(out, line) end
  end
  return out
end

init = function(args)
  local method = os.getenv("BENCH_METHOD") or "GET"
  local headers = {}
  for _, line in ipairs(lines(os.getenv("BENCH_HEADERS"))) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then headers[name] = value end
  end
  local bodies = lines(os.getenv("BENCH_BODIES"))
  local xffs = lines(os.getenv("BENCH_XFF"))
  if #bodies == 0 then
    table.insert(requests, wrk.format(method, nil, headers, nil))
  else
    for i, body in ipairs(bodies) do
      local h = {}
      for k, v in pairs(headers) do h[k] = v end
      if xffs[i] then h["X-Forwarded-For"] = xffs[i] end
      table.insert(requests, wrk.format(method, nil, h, body))
    end
  end
end

request = function()
  local r = requests[nextIndex]
  nextIndex = nextIndex % #requests + 1
  return r
end

if delayMs > 0 then
  delay = function() return delayMs end
end

done = function(summary, latency, requests)
  io.write(string.format(
    '\nBENCH_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,' ..
    '"meanUs":%.1f,"errorsStatus":%d,"errorsConnect":%d,"errorsRead":%d,"errorsWrite":%d,' ..
    '"errorsTimeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean,
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
