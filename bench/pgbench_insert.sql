-- bench/pgbench_insert.sql - one pgbench transaction: insert one quote-shaped
-- row into bench_quotes (bench/setup.sql), priced like the api prices USD->EUR
-- (fees rounded up, payout down) with a varying amount.
\set amount random(10000, 10000000)
\set platform_fee (:amount * 200 + 9999) / 10000
\set onramp_fee (:amount * 70 + 9999) / 10000
\set offramp_fee (:amount * 50 + 9999) / 10000
\set total_fees :platform_fee + :onramp_fee + :offramp_fee
\set payout ((:amount - :total_fees) * 9205) / 10000
INSERT INTO bench_quotes (id, api_key_id, amount, currency, payout_currency, exchange_rate,
	platform_fee, onramp_fee, offramp_fee, total_fees, guaranteed_payout, chain, priority,
	rate_source, created_at, expires_at)
VALUES ('quote_' || gen_random_uuid(), 'bench', :amount::bigint, 'USD', 'EUR', 0.9205,
	:platform_fee::bigint, :onramp_fee::bigint, :offramp_fee::bigint, :total_fees::bigint,
	:payout::bigint, 'base', 'standard',
	'default', now(), now() + interval '60 seconds');
