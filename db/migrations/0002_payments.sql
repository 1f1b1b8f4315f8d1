-- 0002_payments.sql: how a payment is rendered as JSON (SPEC 4), shared by the
-- api (responses) and the worker (event data), so both always agree.

-- RFC 3339 UTC with milliseconds, as in the quotes: 2026-11-22T01:53:04.285Z
CREATE FUNCTION rampart_time_json(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

-- The payment object of SPEC 4 without its history. exchange_rate is a
-- decimal string without trailing zeros ("0.92", "1"), like a quote's.
CREATE FUNCTION rampart_payment_json(p payments) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object(
	'id', p.id,
	'status', p.status,
	'quote_id', p.quote_id,
	'amount', p.amount,
	'currency', p.currency,
	'payout_amount', p.payout_amount,
	'payout_currency', p.payout_currency,
	'exchange_rate', trim_scale(p.exchange_rate)::text,
	'fees', jsonb_build_object(
		'platform_fee', p.platform_fee,
		'onramp_fee', p.onramp_fee,
		'offramp_fee', p.offramp_fee,
		'total_fees', p.total_fees,
		'currency', p.currency),
	'chain', p.chain,
	'source_account', p.source_account,
	'destination_account', p.destination_account,
	'metadata', p.metadata,
	'failure_code', p.failure_code,
	'created_at', rampart_time_json(p.created_at),
	'updated_at', rampart_time_json(p.updated_at));

-- One entry of a payment's "history" array.
CREATE FUNCTION rampart_history_json(h payment_history) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object(
	'from_status', h.from_status,
	'status', h.to_status,
	'at', rampart_time_json(h.created_at),
	'reason', h.reason);

-- GET /v1/payments/{id} reads the history of one payment in order; the
-- UNIQUE (payment_id, to_status) index cannot give that order.
CREATE INDEX payment_history_by_payment ON payment_history (payment_id, id);
