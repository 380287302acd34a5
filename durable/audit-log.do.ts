import { DurableObject } from "cloudflare:workers";
import { AUDIT_MAX_DETAILS_BYTES } from "../lib/audit.d1.ts";
import { log } from "../lib/log.ts";
import { type Result, err, ok } from "../lib/result.ts";
import { AUDIT_LOG_MIGRATIONS, type AuditRow, type EntryRow } from "./audit-log.migrations.ts";
import { applySchema } from "./sql-schema.ts";

const DAY_MS = 86_400_000;
/** Entries are kept this long after their time, then deleted by the object's alarm. */
export const AUDIT_RETENTION_MS = 30 * DAY_MS;
/** Entries per `record` call and rows per `query` page. */
export const AUDIT_MAX_BATCH = 1_000;
export const AUDIT_MAX_PAGE = 10_000;
/** Expired rows deleted per alarm run: bounded work per invocation. */
const SWEEP_BATCH = 5_000;
/** The earliest a retention alarm is set from now. */
const SWEEP_DELAY_MS = 60_000;

/** `deploy.completed`, `admin.action`, `dlq.redrive_started`: lowercase dotted words. */
const TYPE_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const NAME_PATTERN = /^audit-(\d{4}-\d{2}-\d{2})$/;

/**
 * One audit entry as it crosses RPC. `details` is a JSON object's text: a string crosses RPC as
 * itself, where `unknown` would be mapped to `never` by the RPC types.
 */
export interface AuditRecord {
  /** Idempotency key: the same id twice is stored once. */
  id: string;
  /** When it happened, epoch ms; decides the day object. */
  at: number;
  type: string;
  actor: string;
  projectId: string | null;
  details: string;
}

/** What `record` stored. */
export interface RecordValue {
  /** Entries new to this object. */
  inserted: number;
  /** Entries whose id it already held (a repeated relay or a retried step). */
  duplicates: number;
}

/** Filters of one page; every field is required so the RPC type stays flat. */
export interface AuditQuery {
  /** Inclusive lower bound, epoch ms. */
  from: number;
  /** Exclusive upper bound, epoch ms. */
  to: number;
  /** Exact types; with `typePrefixes` empty too, every type matches. */
  types: string[];
  /** Type prefixes (`deploy.` for `deploy.*`). */
  typePrefixes: string[];
  projectId: string | null;
  /** Keyset cursor: only entries ordered after `(afterAt, afterId)`. */
  afterAt: number | null;
  afterId: string | null;
  limit: number;
}

/** One page of `query`. */
export interface AuditPage {
  /** Ordered by `(at, id)`. */
  entries: AuditRecord[];
  /** True when more entries match after the last one returned. */
  more: boolean;
}

/** What `stats` reports. */
export interface AuditLogStats {
  day: string | null;
  entries: number;
  oldestAt: number | null;
  newestAt: number | null;
  alarmAt: number | null;
}

/** Why `record` or `query` refused. */
export type AuditLogError = { reason: "invalid_entry" | "wrong_day" | "invalid_query"; message: string };

const encoder = new TextEncoder();

/** The UTC day of `at`, `YYYY-MM-DD`. */
export function auditDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** The Durable Object name holding the entries of `day` (`YYYY-MM-DD`). */
export function auditLogName(day: string): string {
  return `audit-${day}`;
}

/** The UTC days that overlap `[from, to)`, oldest first. */
export function auditDays(from: number, to: number): string[] {
  const days: string[] = [];
  if (to <= from) return days;
  for (let start = Math.floor(from / DAY_MS) * DAY_MS; start < to; start += DAY_MS) days.push(auditDay(start));
  return days;
}

/** The AuditLog object holding the entries of `day` (`YYYY-MM-DD`). */
export function auditLog(env: Pick<Env, "AUDIT_LOG">, day: string): DurableObjectStub<AuditLog> {
  return env.AUDIT_LOG.getByName(auditLogName(day));
}

/** Why `entry` cannot be stored, or null. */
function invalidEntry(entry: AuditRecord): string | null {
  if (typeof entry.id !== "string" || entry.id.length === 0 || entry.id.length > 256) return "id must be 1..256 chars";
  if (!Number.isSafeInteger(entry.at) || entry.at < 0) return `${entry.id}: at must be epoch ms`;
  if (typeof entry.type !== "string" || entry.type.length > 64 || !TYPE_PATTERN.test(entry.type)) {
    return `${entry.id}: type must be lowercase dotted words, at most 64 chars`;
  }
  if (typeof entry.actor !== "string" || entry.actor.length === 0 || entry.actor.length > 256) {
    return `${entry.id}: actor must be 1..256 chars`;
  }
  if (entry.projectId !== null && (typeof entry.projectId !== "string" || entry.projectId.length > 128)) {
    return `${entry.id}: projectId must be null or at most 128 chars`;
  }
  if (typeof entry.details !== "string" || encoder.encode(entry.details).byteLength > AUDIT_MAX_DETAILS_BYTES) {
    return `${entry.id}: details must be JSON text of at most ${AUDIT_MAX_DETAILS_BYTES} bytes`;
  }
  try {
    const parsed: unknown = JSON.parse(entry.details);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      return `${entry.id}: details must be a JSON object`;
  } catch {
    return `${entry.id}: details is not JSON`;
  }
  return null;
}

/**
 * The WHERE clause of `query` over a table of audit rows, with its bindings: one definition for the
 * objects and the D1 outbox, so both filter and order alike. `table` qualifies `type`, which
 * `json_each` would otherwise shadow with its own `type` column.
 */
export function auditWhere(table: string, query: AuditQuery): { sql: string; bindings: (string | number | null)[] } {
  return {
    sql: `at >= ? AND at < ?
      AND (? IS NULL OR at > ? OR (at = ? AND id > ?))
      AND (? = 0 OR ${table}.type IN (SELECT value FROM json_each(?))
           OR EXISTS (SELECT 1 FROM json_each(?) AS p WHERE substr(${table}.type, 1, length(p.value)) = p.value))
      AND (? IS NULL OR project_id = ?)`,
    bindings: [
      query.from,
      query.to,
      query.afterAt,
      query.afterAt,
      query.afterAt,
      query.afterId ?? "",
      query.types.length + query.typePrefixes.length,
      JSON.stringify(query.types),
      JSON.stringify(query.typePrefixes),
      query.projectId,
      query.projectId,
    ],
  };
}

/** A stored row (here or in the D1 outbox) as it crosses RPC. */
export function recordFromRow(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    at: row.at,
    type: row.type,
    actor: row.actor,
    projectId: row.project_id,
    details: row.details,
  };
}

/**
 * The audit trail of one UTC day (`audit-YYYY-MM-DD`): every admin action, deploy, rollback, down,
 * enforcement change and redrive whose time falls in that day. Why one object per day, how entries
 * get here exactly once and how retention works: docs/decisions/0007-audit-log.md.
 *
 * Entries are idempotent by id (a repeated relay of the D1 outbox stores nothing new). The alarm
 * deletes entries 30 days after their time, so a day's object empties itself a month later.
 */
export class AuditLog extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    applySchema(ctx.storage, AUDIT_LOG_MIGRATIONS);
  }

  /**
   * Stores the entries this object does not hold yet (by id), all or none: a batch with one
   * invalid entry, or one from another day, is refused whole so the caller's outbox keeps it.
   */
  async record(entries: AuditRecord[]): Promise<Result<RecordValue, AuditLogError>> {
    if (entries.length > AUDIT_MAX_BATCH) {
      return err({ reason: "invalid_entry", message: `at most ${AUDIT_MAX_BATCH} entries per call` });
    }
    const day = this.#day();
    for (const entry of entries) {
      const problem = invalidEntry(entry);
      if (problem) return err({ reason: "invalid_entry", message: problem });
      // Range queries visit only the objects of the days in range: an entry filed under another
      // day would never be found.
      if (day !== null && auditDay(entry.at) !== day) {
        return err({
          reason: "wrong_day",
          message: `${entry.id} is of ${auditDay(entry.at)}, this object holds ${day}`,
        });
      }
    }
    const now = Date.now();
    let inserted = 0;
    this.ctx.storage.transactionSync(() => {
      for (const entry of entries) {
        const held = this.#sql.exec("SELECT 1 FROM entries WHERE id = ?", entry.id).toArray().length > 0;
        if (held) continue;
        this.#sql.exec(
          "INSERT INTO entries (id, at, type, actor, project_id, details, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
          entry.id,
          entry.at,
          entry.type,
          entry.actor,
          entry.projectId,
          entry.details,
          now,
        );
        inserted++;
      }
    });
    if (inserted > 0) await this.#armRetention();
    return ok({ inserted, duplicates: entries.length - inserted });
  }

  /** One page of entries matching `query`, ordered by `(at, id)`. */
  async query(query: AuditQuery): Promise<Result<AuditPage, AuditLogError>> {
    if (!Number.isSafeInteger(query.limit) || query.limit < 1 || query.limit > AUDIT_MAX_PAGE) {
      return err({ reason: "invalid_query", message: `limit must be 1..${AUDIT_MAX_PAGE}` });
    }
    if (!Number.isFinite(query.from) || !Number.isFinite(query.to)) {
      return err({ reason: "invalid_query", message: "from and to must be epoch ms" });
    }
    const where = auditWhere("entries", query);
    const rows = this.#sql
      .exec<EntryRow>(
        `SELECT id, at, type, actor, project_id, details, recorded_at FROM entries WHERE ${where.sql} ORDER BY at, id LIMIT ?`,
        ...where.bindings,
        query.limit + 1,
      )
      .toArray();
    return ok({ entries: rows.slice(0, query.limit).map(recordFromRow), more: rows.length > query.limit });
  }

  /** What this object holds (on-call and tests). */
  async stats(): Promise<AuditLogStats> {
    const row = this.#sql
      .exec<{ n: number; oldest: number | null; newest: number | null }>(
        "SELECT COUNT(*) AS n, MIN(at) AS oldest, MAX(at) AS newest FROM entries",
      )
      .one();
    return {
      day: this.#day(),
      entries: row.n,
      oldestAt: row.oldest,
      newestAt: row.newest,
      alarmAt: await this.ctx.storage.getAlarm(),
    };
  }

  /** Retention: deletes entries older than 30 days, then re-arms for the oldest left. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const deleted = this.#sql
      .exec(
        "DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries WHERE at < ? LIMIT ?) RETURNING id",
        now - AUDIT_RETENTION_MS,
        SWEEP_BATCH,
      )
      .toArray().length;
    if (deleted > 0) log.info("audit_entries_expired", { object: this.ctx.id.name ?? this.ctx.id.toString(), deleted });
    if (deleted >= SWEEP_BATCH) {
      // More to delete: continue at once, in a new invocation with its own limits.
      await this.ctx.storage.setAlarm(now);
      return;
    }
    await this.#armRetention();
  }

  /** Arms the alarm for when the oldest entry expires (never later than an alarm already set). */
  async #armRetention(): Promise<void> {
    const oldest = this.#sql.exec<{ oldest: number | null }>("SELECT MIN(at) AS oldest FROM entries").one().oldest;
    if (oldest === null) return;
    // Never sooner than a minute from now: entries that arrive already expired (a late relay) are
    // then swept together by one alarm run instead of one run per write.
    const due = Math.max(oldest + AUDIT_RETENTION_MS, Date.now() + SWEEP_DELAY_MS);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > due) await this.ctx.storage.setAlarm(due);
  }

  /** The UTC day this object holds, from its name; null for an object not named by day (tests). */
  #day(): string | null {
    const name = this.ctx.id.name;
    return name ? (NAME_PATTERN.exec(name)?.[1] ?? null) : null;
  }
}
