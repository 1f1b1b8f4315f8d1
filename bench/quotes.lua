-- bench/quotes.lua - wrk script: POST /v1/quotes (USD->EUR) with a varying amount.
--
-- Environment: BENCH_API_KEY (default sk_bench); BENCH_DELAY_MS, when > 0,
-- makes each connection wait that many milliseconds before each request
-- (wrk's delay() hook), which paces the offered load for the fixed-rate run.
local key = os.getenv("BENCH_API_KEY") or "sk_bench"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"

local n = 0
local threads = 0

-- setup() runs in the main Lua state, once per thread: number the threads.
function setup(thread)
	thread:set("thread_id", threads)
	threads = threads + 1
end

function init(args)
	-- Threads start at different offsets so amounts differ across threads.
	n = (thread_id or 0) * 1000003
end

function request()
	n = n + 1
	local amount = 10000 + (n * 7919) % 10000000
	local body = string.format('{"from_currency":"USD","to_currency":"EUR","amount":%d}', amount)
	return wrk.format(nil, nil, nil, body)
end

if delay_ms > 0 then
	function delay()
		return delay_ms
	end
end
