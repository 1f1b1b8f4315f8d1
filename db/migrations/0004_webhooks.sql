-- 0004_webhooks.sql: what the webhook daemon's relay needs. Its stale pass
-- looks for deliveries created but never attempted (their job was lost
-- between the commit and the XADD); the partial index keeps that scan to the
-- few pending, never-attempted rows.
CREATE INDEX webhook_deliveries_unattempted ON webhook_deliveries (updated_at)
	WHERE state = 'pending' AND attempts = 0;
