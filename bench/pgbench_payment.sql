-- bench/pgbench_payment.sql - one payment creation as the api commits it
-- (services/api/payments.c): an expired-key cleanup and the statement that
-- consumes a fresh quote and writes the payment, its history row, its
-- event and its Idempotency-Key row, in one transaction, and returns the
-- payment's columns (PAYMENT_COLS) and history text; then the stored
-- response, as the api's second statement. Quotes quote_pgb_<n> exist.
SELECT nextval('bench_quote_seq') AS n \gset
BEGIN;
DELETE FROM idempotency_keys WHERE api_key_id = 'bench' AND key = 'pgb-' || :n AND expires_at <= now();
WITH q AS (
 UPDATE quotes SET used_at = now()
 WHERE id = 'quote_pgb_' || :n AND used_at IS NULL AND expires_at > now()
 RETURNING *
), p AS (
 INSERT INTO payments (id, api_key_id, quote_id, status, amount, currency, payout_amount,
  payout_currency, exchange_rate, platform_fee, onramp_fee, offramp_fee, total_fees, chain,
  source_account, destination_account, metadata)
 SELECT 'pay_pgb_' || :n, 'bench', q.id, 'PENDING', q.amount, q.currency, q.guaranteed_payout,
  q.payout_currency, q.exchange_rate, q.platform_fee, q.onramp_fee, q.offramp_fee, q.total_fees,
  q.chain, 'acct_bench_src', 'acct_bench_dst', '{}'
 FROM q RETURNING payments AS row
), h AS (
 INSERT INTO payment_history (payment_id, from_status, to_status)
 SELECT (p.row).id, NULL, 'PENDING' FROM p RETURNING *
), e AS (
 INSERT INTO events (id, type, payment_id, data)
 SELECT 'evt_pgb_' || :n, 'payment.pending', (p.row).id, rampart_payment_json(p.row) FROM p
), i AS (
 INSERT INTO idempotency_keys (api_key_id, key, request_hash, payment_id, expires_at)
 SELECT 'bench', 'pgb-' || :n, 'x', (p.row).id, now() + interval '24 hours' FROM p
)
SELECT n.id, n.status, n.quote_id, n.amount, n.currency, n.payout_amount, n.payout_currency,
 trim_scale(n.exchange_rate)::text, n.platform_fee, n.onramp_fee, n.offramp_fee, n.total_fees,
 n.chain, n.source_account, n.destination_account, n.metadata::text, n.failure_code,
 rampart_time_json(n.created_at), rampart_time_json(n.updated_at),
 (SELECT string_agg('{"from_status":' || coalesce(to_json(h.from_status)::text, 'null')
  || ',"status":' || to_json(h.to_status)::text || ',"at":"' || rampart_time_json(h.created_at)
  || '","reason":' || coalesce(to_json(h.reason)::text, 'null') || '}', ',') FROM h)
FROM (SELECT (p.row).* FROM p) AS n;
COMMIT;
UPDATE idempotency_keys SET state = 'complete', response_status = 202, response_body = '{}'
 WHERE api_key_id = 'bench' AND key = 'pgb-' || :n;
