import { type Result, assertNever, err, ok } from "../lib/result.ts";
import { describeError, log } from "../lib/log.ts";
import {
  AUDIT_MAX_PAGE,
  AUDIT_RETENTION_MS,
  type AuditLogError,
  type AuditQuery,
  type AuditRecord,
  auditDay,
  auditDays,
  auditLog,
  auditWhere,
  recordFromRow,
} from "./audit-log.do.ts";
import type { AuditRow } from "./audit-log.migrations.ts";

/**
 * The outbox between D1 `audit_log` (where lib/audit.ts writes each entry with its effect) and the
 * `AuditLog` Durable Objects, one per UTC day. `relayAuditOutbox` copies entries there
 * idempotently by id; `queryAudit` reads both, so an entry is visible the moment its batch commits.
 * Why: docs/decisions/0007-audit-log.md.
 */

const OUTBOX_COLUMNS = "id, at, type, actor, project_id, details";
/** Outbox rows per relay round (one D1 read, one RPC per day, one D1 update). */
const RELAY_BATCH = 200;
/** Shipped outbox rows are kept this long (a window to compare D1 with the objects), then pruned. */
export const AUDIT_OUTBOX_KEEP_MS = 86_400_000;
const PRUNE_CHUNK = 5_000;
const PRUNE_MAX_CHUNKS = 100;

type AuditEnv = Pick<Env, "DB" | "AUDIT_LOG">;

/** What one `relayAuditOutbox` call did. */
export interface RelayOutcome {
  /** Entries the AuditLog objects acknowledged (new or already held) and now marked shipped. */
  shipped: number;
  /** True when the outbox still holds unshipped entries (round limit reached, or a failure). */
  pending: boolean;
}

/**
 * Copies unshipped `audit_log` rows into the AuditLog object of their UTC day, oldest first, and
 * marks them shipped once the object acknowledged them. At least once by construction (a crash
 * between the RPC and the mark ships the rows again) and idempotent at the object (by id), so
 * exactly once in the log. Concurrent relays (cron, a query) are harmless for the same reason.
 * Never throws: a failure is logged and the rows stay in the outbox for the next relay.
 */
export async function relayAuditOutbox(env: AuditEnv, options: { maxRounds?: number } = {}): Promise<RelayOutcome> {
  let shipped = 0;
  for (let round = 0; round < (options.maxRounds ?? 10); round++) {
    try {
      const { results } = await env.DB.prepare(
        `SELECT ${OUTBOX_COLUMNS} FROM audit_log WHERE shipped_at IS NULL ORDER BY at, id LIMIT ?`,
      )
        .bind(RELAY_BATCH)
        .all<AuditRow>();
      if (results.length === 0) return { shipped, pending: false };
      const acknowledged: string[] = [];
      const byDay = Map.groupBy(results, (row) => auditDay(row.at));
      const outcomes = await Promise.all(
        [...byDay].map(async ([day, rows]) => ({
          day,
          rows,
          result: await auditLog(env, day).record(rows.map(recordFromRow)),
        })),
      );
      for (const { day, rows, result } of outcomes) {
        if (result.ok) acknowledged.push(...rows.map((row) => row.id));
        else
          log.error("audit_relay_rejected", {
            day,
            entries: rows.length,
            reason: result.error.reason,
            error: result.error.message,
          });
      }
      if (acknowledged.length > 0) {
        await env.DB.prepare(
          "UPDATE audit_log SET shipped_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND shipped_at IS NULL",
        )
          .bind(Date.now(), JSON.stringify(acknowledged))
          .run();
      }
      shipped += acknowledged.length;
      // A refused day stays unshipped: stop rather than read the same rows again this call.
      if (acknowledged.length < results.length) return { shipped, pending: true };
      if (results.length < RELAY_BATCH) return { shipped, pending: false };
    } catch (error) {
      log.error("audit_relay_failed", { shipped, error: describeError(error) });
      return { shipped, pending: true };
    }
  }
  return { shipped, pending: true };
}

/**
 * Deletes outbox rows shipped more than `AUDIT_OUTBOX_KEEP_MS` ago, in bounded chunks (daily
 * cron). Unshipped rows are never deleted. Returns rows deleted.
 */
export async function pruneAuditOutbox(env: Pick<Env, "DB">, now: number = Date.now()): Promise<number> {
  let deleted = 0;
  for (let chunk = 0; chunk < PRUNE_MAX_CHUNKS; chunk++) {
    const result = await env.DB.prepare(
      "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE shipped_at IS NOT NULL AND shipped_at < ? LIMIT ?)",
    )
      .bind(now - AUDIT_OUTBOX_KEEP_MS, PRUNE_CHUNK)
      .run();
    deleted += result.meta.changes;
    if (result.meta.changes < PRUNE_CHUNK) break;
  }
  log.info("audit_outbox_pruned", { deleted });
  return deleted;
}

/** What `queryAudit` returns entries for. */
export interface AuditFilter {
  /** Inclusive, epoch ms. */
  from: number;
  /** Exclusive, epoch ms. */
  to: number;
  types: string[];
  typePrefixes: string[];
  projectId: string | null;
  /** Keyset cursor: entries ordered after this `(at, id)`. */
  after: { at: number; id: string } | null;
  limit: number;
}

/** One page of `queryAudit`. */
export interface AuditListing {
  /** Ordered by `(at, id)`. */
  entries: AuditRecord[];
  /** Where the next page starts, or null when this page is the last. */
  next: { at: number; id: string } | null;
}

/** Why `queryAudit` could not answer. */
export type AuditQueryError = { reason: "invalid_query" | "unavailable"; message: string };

function queryErrorReason(error: AuditLogError): AuditQueryError["reason"] {
  switch (error.reason) {
    case "invalid_query":
      return "invalid_query";
    case "invalid_entry":
    case "wrong_day":
      return "unavailable";
    default:
      return assertNever(error.reason);
  }
}

/** Days whose objects are queried in parallel at a time (a page usually fills from the first ones). */
const FAN_OUT = 7;

/**
 * One page of the audit trail. Relays the outbox first (bounded), then reads what is still
 * unshipped in D1 and fans out over the day objects in range, in day order, stopping once the
 * page is full; the two are merged and deduplicated by id. D1 is read before the objects: a row a
 * concurrent relay ships in between is then in the D1 answer, never in neither.
 */
export async function queryAudit(env: AuditEnv, filter: AuditFilter): Promise<Result<AuditListing, AuditQueryError>> {
  if (filter.limit < 1 || filter.limit > AUDIT_MAX_PAGE) {
    return err({ reason: "invalid_query", message: `limit must be 1..${AUDIT_MAX_PAGE}` });
  }
  await relayAuditOutbox(env, { maxRounds: 5 });
  const query: AuditQuery = {
    from: filter.from,
    to: filter.to,
    types: filter.types,
    typePrefixes: filter.typePrefixes,
    projectId: filter.projectId,
    afterAt: filter.after?.at ?? null,
    afterId: filter.after?.id ?? null,
    limit: filter.limit,
  };
  let unshipped: AuditRow[];
  try {
    const where = auditWhere("audit_log", query);
    const { results } = await env.DB.prepare(
      `SELECT ${OUTBOX_COLUMNS} FROM audit_log WHERE shipped_at IS NULL AND ${where.sql} ORDER BY at, id LIMIT ?`,
    )
      .bind(...where.bindings, filter.limit + 1)
      .all<AuditRow>();
    unshipped = results;
  } catch (error) {
    return err({ reason: "unavailable", message: `D1 audit_log: ${describeError(error)}` });
  }

  // Objects of days before retention are empty, and no entry is stamped far in the future.
  const now = Date.now();
  const from = Math.max(filter.after?.at ?? filter.from, filter.from, now - AUDIT_RETENTION_MS - 86_400_000);
  const to = Math.min(filter.to, now + 86_400_000);
  const days = auditDays(from, to);
  const fromObjects: AuditRecord[] = [];
  let objectsHaveMore = false;
  for (let start = 0; start < days.length && fromObjects.length <= filter.limit; start += FAN_OUT) {
    const pages = await Promise.allSettled(
      days.slice(start, start + FAN_OUT).map((day) => auditLog(env, day).query(query)),
    );
    for (const page of pages) {
      if (page.status === "rejected") {
        return err({ reason: "unavailable", message: `AuditLog object: ${describeError(page.reason)}` });
      }
      if (!page.value.ok) return err({ reason: queryErrorReason(page.value.error), message: page.value.error.message });
      fromObjects.push(...page.value.value.entries);
      objectsHaveMore ||= page.value.value.more;
    }
  }

  const byId = new Map<string, AuditRecord>();
  for (const entry of [...fromObjects, ...unshipped.map(recordFromRow)]) {
    if (!byId.has(entry.id)) byId.set(entry.id, entry);
  }
  const merged = [...byId.values()].toSorted((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const entries = merged.slice(0, filter.limit);
  const more = merged.length > filter.limit || objectsHaveMore || unshipped.length > filter.limit;
  const last = entries.at(-1);
  return ok({ entries, next: more && last ? { at: last.at, id: last.id } : null });
}
