-- The load of benchmarks/api.py, sent by wrk: a file of pre-built raw HTTP requests
-- ("<length>\n<bytes>" records), each sent once in order over wrk's connections. When `quota`
-- answers have arrived, one line of JSON on stdout says how long they took and what they were
-- (statuses; webhook answers saying "duplicate": true), and how many of the requests were sent
-- (those still unanswered are served all the same). The caller then interrupts wrk (SIGINT),
-- which prints the latency percentiles from done().
--
--   wrk -t1 -c16 -d3600s --timeout 60s -s requests.lua http://127.0.0.1:PORT -- FILE QUOTA

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
    return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end

local requests, quota = {}, 0
local sent, answered, duplicates, started = 0, 0, 0, nil
local verified = false
local statuses = {}

function init(args)
    local file = assert(io.open(args[1], "rb"))
    local data = file:read("*a")
    file:close()
    local position = 1
    while position <= #data do
        local newline = data:find("\n", position, true)
        local length = tonumber(data:sub(position, newline - 1))
        requests[#requests + 1] = data:sub(newline + 1, newline + length)
        position = newline + length + 1
    end
    quota = tonumber(args[2])
end

function request()
    if not verified then
        -- wrk calls request() once after init() to check what it returns; that one is not sent.
        verified = true
        return requests[1]
    end
    if answered >= quota then
        -- The quota's answer came earlier in this turn of the loop, which ends with it: the
        -- connections it finds ready get the first request again (answered long ago, so the
        -- webhook's a redelivery that changes nothing), and `sent` stays what was reported.
        return requests[1]
    end
    sent = sent + 1
    if started == nil then
        started = now()
    end
    return requests[math.min(sent, #requests)]
end

function response(status, headers, body)
    answered = answered + 1
    statuses[status] = (statuses[status] or 0) + 1
    if body and body:find('"duplicate":%s*true') then
        duplicates = duplicates + 1
    end
    if answered == quota then
        local elapsed = now() - started
        local counts = {}
        for code, count in pairs(statuses) do
            counts[#counts + 1] = string.format('"%d": %d', code, count)
        end
        io.write(
            string.format(
                '{"elapsed": %.6f, "answered": %d, "sent": %d, "duplicates": %d, "statuses": {%s}}\n',
                elapsed,
                answered,
                sent,
                duplicates,
                table.concat(counts, ", ")
            )
        )
        io.flush()
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(
        string.format(
            '{"p50_us": %d, "p95_us": %d, "max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
            latency:percentile(50),
            latency:percentile(95),
            latency.max,
            errors.connect,
            errors.read,
            errors.write,
            errors.timeout
        )
    )
    io.flush()
end
