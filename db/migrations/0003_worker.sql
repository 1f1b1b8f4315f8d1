-- 0003_worker.sql: what the worker's relay needs. reconciled_at records when
-- the relay last re-enqueued a stalled payment, so it does so at most once
-- per stale window; the partial index keeps its scan to live payments.
ALTER TABLE payments ADD COLUMN reconciled_at timestamptz;
CREATE INDEX payments_live_by_updated ON payments (updated_at)
	WHERE status NOT IN ('COMPLETED', 'FAILED', 'REFUNDED');
