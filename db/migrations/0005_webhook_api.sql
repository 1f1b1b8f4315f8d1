-- 0005_webhook_api.sql: what the webhook endpoints API needs. Deleting an
-- endpoint cancels its pending deliveries; webhook_deliveries' primary key
-- starts with event_id, so without this index that UPDATE scans every delivery.
CREATE INDEX webhook_deliveries_pending_by_endpoint ON webhook_deliveries (endpoint_id)
	WHERE state = 'pending';
