-- 0006_recovery.sql: bounded recovery after a lost job (docs/operations.md,
-- "Recovery"). Every payment transition and every rescheduled step records
-- when the payment's next step is due; every webhook attempt records when
-- the next one is due. The relays re-queue what is overdue by a few seconds
-- (its job was lost: Redis down during the XADD/ZADD, or lost with Redis
-- data) instead of waiting for the long stale windows. New rows are due at
-- once (the default); existing rows keep NULL and only the stale windows
-- cover them, as before. The partial indexes keep the scans to live rows.
ALTER TABLE payments ADD COLUMN IF NOT EXISTS next_due_at timestamptz;
ALTER TABLE payments ALTER COLUMN next_due_at SET DEFAULT clock_timestamp();
CREATE INDEX IF NOT EXISTS payments_live_by_due ON payments (next_due_at)
	WHERE status NOT IN ('COMPLETED', 'FAILED', 'REFUNDED');
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;
ALTER TABLE webhook_deliveries ALTER COLUMN next_attempt_at SET DEFAULT clock_timestamp();
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending_by_due ON webhook_deliveries (next_attempt_at)
	WHERE state = 'pending';
