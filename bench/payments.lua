-- bench/payments.lua - wrk script: POST /v1/payments, each request with a
-- fresh quote (ids read from BENCH_QUOTES, created beforehand) and a fresh
-- Idempotency-Key. Thread t of BENCH_THREADS takes ids t+1, t+1+T, ...
local key = os.getenv("BENCH_API_KEY") or "sk_bench"
local file = os.getenv("BENCH_QUOTES")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"

local threads = 0
local ids = {}
local i = 0

function setup(thread)
	thread:set("thread_id", threads)
	threads = threads + 1
end

function init(args)
	for line in io.lines(file) do
		ids[#ids + 1] = line
	end
	i = (thread_id or 0) + 1
end

function request()
	local id = ids[i]
	if id == nil then
		wrk.thread:stop() -- out of quotes: the run ends early, requests are counted
		id = ids[#ids]
	end
	i = i + nthreads
	local body = string.format('{"quote_id":"%s","source_account":"acct_bench_src",' ..
		'"destination_account":"acct_bench_dst"}', id)
	-- A headers table given to wrk.format replaces wrk.headers: repeat them.
	return wrk.format(nil, nil, {
		["Authorization"] = "Bearer " .. key,
		["Content-Type"] = "application/json",
		["Idempotency-Key"] = "bench-" .. id,
	}, body)
end
