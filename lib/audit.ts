import { describeError, log } from "./log.ts";

/** Audit entry types: every admin action, deploy and enforcement transition. */
export type AuditType =
  | "deploy.requested"
  | "deploy.completed"
  | "deploy.failed"
  | "rollback.requested"
  | "rollback.completed"
  | "down.requested"
  | "down.completed"
  | "enforcement.applied"
  | "enforcement.cleared"
  | "admin.action";

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
      JSON.stringify(entry.details ?? {}),
    );
}

/** Records an audit entry on its own; a failure is logged, never thrown (the action already happened). */
export async function audit(db: D1Database, entry: AuditEntry): Promise<void> {
  try {
    await auditStatement(db, entry).run();
  } catch (error) {
    log.error("audit_write_failed", { type: entry.type, project_id: entry.projectId, error: describeError(error) });
  }
}
