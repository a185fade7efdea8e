-- wrk script of bench/api.py.
--
--   wrk ... -s bench/wrk_zdm.lua URL                      GET the URL
--   wrk ... -s bench/wrk_zdm.lua URL -- PARAMS.lua        POST /api/v1/backups, unique names
--
-- PARAMS.lua (written by bench/api.py) returns {prefix=..., user=..., targets={{center=,
-- server=, partition=, repository_id=, repository_path=}, ...}}. Each request registers the
-- seed's job for one target with a job name no other request uses: prefix, thread, counter.
-- done() prints one line `ZDM-BENCH {json}` that bench/api.py reads.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

local params = nil
local counter = 0

function init(args)
  if args[1] then
    params = dofile(args[1])
    wrk.headers["Content-Type"] = "application/json"
  end
end

local body_format = '{"center": "%s", "server": "%s", "type": "full", "partition": ["%s"], '
  .. '"repository": {"id": %d, "type": "local", "path": "%s"}, "jobName": "%s-%d-%d", '
  .. '"user": "%s", "schedule": {"type": "daily", "description": "0 2 * * *"}}'

function request()
  if not params then
    return wrk.format()
  end
  counter = counter + 1
  local target = params.targets[(counter % #params.targets) + 1]
  local body = string.format(body_format, target.center, target.server, target.partition,
    target.repository_id, target.repository_path, params.prefix, thread_number, counter,
    params.user)
  return wrk.format("POST", "/api/v1/backups", nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'ZDM-BENCH {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
    .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0), latency.max,
    latency.mean))
end
