-- audit_log is the transactional outbox of the AuditLog Durable Objects (docs/decisions/0007-audit-log.md):
-- an entry is written here in the same D1 batch as the effect it records, then copied, idempotently
-- by id, into the AuditLog object of its UTC day. shipped_at says when that copy was acknowledged.
ALTER TABLE audit_log ADD COLUMN shipped_at INTEGER;  -- epoch ms; NULL = not yet in the AuditLog object

-- The relay reads what is left to ship, oldest first, without scanning what was shipped.
CREATE INDEX IF NOT EXISTS audit_log_unshipped ON audit_log (at, id) WHERE shipped_at IS NULL;
-- The daily cron deletes rows shipped more than a day ago.
CREATE INDEX IF NOT EXISTS audit_log_shipped ON audit_log (shipped_at) WHERE shipped_at IS NOT NULL;
