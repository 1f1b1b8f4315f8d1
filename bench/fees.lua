-- bench/fees.lua - wrk script: POST /v1/fees/calculate (USD->EUR).
--
-- Environment: BENCH_API_KEY (default sk_bench); BENCH_AMOUNTS = "vary"
-- (default: amounts across every band) or "band" (all within $50-$100, so
-- one AI cache key serves them all); BENCH_DELAY_MS paces each connection;
-- BENCH_GET=1 sends plain GETs of the URL instead (the paced baseline).
local key = os.getenv("BENCH_API_KEY") or "sk_bench"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
local band = (os.getenv("BENCH_AMOUNTS") or "vary") == "band"
local get = os.getenv("BENCH_GET") == "1"

if not get then
	wrk.method = "POST"
	wrk.headers["Authorization"] = "Bearer " .. key
	wrk.headers["Content-Type"] = "application/json"
end

local n = 0
local threads = 0

function setup(thread)
	thread:set("thread_id", threads)
	threads = threads + 1
end

function init(args)
	n = (thread_id or 0) * 1000003
end

function request()
	if get then
		return wrk.format()
	end
	n = n + 1
	local amount
	if band then
		amount = 5000 + (n * 7919) % 5000
	else
		amount = 1000 + (n * 7919) % 100000000
	end
	local body = string.format('{"from_currency":"USD","to_currency":"EUR","amount":%d}', amount)
	return wrk.format(nil, nil, nil, body)
end

if delay_ms > 0 then
	function delay()
		return delay_ms
	end
end
