import { describeError, log } from "./log.ts";

/**
 * The audit trail's writers. An entry goes into D1 `audit_log` (`auditStatement` in the same batch
 * as the effect it records, or `audit` on its own); that table is the transactional outbox of the
 * `AuditLog` Durable Objects, one per UTC day, which hold the queryable, 30-day log
 * (durable/audit-log.outbox.ts relays and queries). Why: docs/decisions/0007-audit-log.md.
 */

/** A `details` JSON text may be at most this many bytes (the AuditLog object refuses larger). */
export const AUDIT_MAX_DETAILS_BYTES = 64 * 1024;

/** Audit entry types: every admin action, deploy, rollback, down, enforcement change and redrive. */
export type AuditType =
  | "deploy.requested"
  | "deploy.completed"
  | "deploy.failed"
  | "deploy.refused"
  | "deploy_secret.rotated"
  | "resource.exported"
  | "rollback.requested"
  | "rollback.completed"
  | "down.requested"
  | "down.completed"
  | "enforcement.applied"
  | "enforcement.cleared"
  | "redrive.started"
  | "redrive.completed"
  | "redrive.cancelled"
  | "redrive.failed"
  | "dlq.deleted"
  | "dlq.purged"
  | "queue.sent"
  | "session.created"
  | "session.ended"
  | "admin.action";

/** What a writer records; `id` makes it idempotent (default: a new uuid). */
export interface AuditEntry {
  type: AuditType;
  actor: string;
  projectId?: string | null;
  details?: Record<string, unknown>;
  /** Idempotency: the same id twice records once (workflow steps may run again). */
  id?: string;
}

/** The D1 statement recording `entry` (to put into the caller's batch, so it commits with its effect). */
export function auditStatement(db: D1Database, entry: AuditEntry, at: number = Date.now()): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO audit_log (id, at, type, actor, project_id, details) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
    )
    .bind(
      entry.id ?? crypto.randomUUID(),
      at,
      entry.type,
      entry.actor,
      entry.projectId ?? null,
      detailsText(entry.details ?? {}),
    );
}

const encoder = new TextEncoder();

/**
 * `details` as JSON, replaced by a note when too large for the AuditLog object: an entry the
 * object would refuse would sit in the outbox for ever.
 */
function detailsText(details: Record<string, unknown>): string {
  const text = JSON.stringify(details);
  const bytes = encoder.encode(text).byteLength;
  return bytes <= AUDIT_MAX_DETAILS_BYTES ? text : JSON.stringify({ truncated: true, bytes });
}

/** Records an audit entry on its own; a failure is logged, never thrown (the action already happened). */
export async function audit(db: D1Database, entry: AuditEntry): Promise<void> {
  try {
    await auditStatement(db, entry).run();
  } catch (error) {
    log.error("audit_write_failed", { type: entry.type, project_id: entry.projectId, error: describeError(error) });
  }
}
