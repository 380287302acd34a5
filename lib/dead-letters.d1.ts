/**
 * The dead-letter archive in D1 (`dead_letters`, `message_failures`; docs/storage.md): the queries
 * the dead-letter consumer, the on-call API and the redrive task share.
 */

/** Which archived messages an operation applies to (every field narrows; see schemas/dlq.schema.ts). */
export interface DlqFilter {
  /** Source queue (never the `-dlq` name). */
  queue?: string;
  type?: string;
  projectId?: string;
  /** Text the last failure reason contains. */
  reason?: string;
  /** Last failure at or after, epoch ms. */
  since?: number;
  /** Last failure before, epoch ms. */
  until?: number;
  /** Archive ids. */
  ids?: string[];
}

/** A `dead_letters` row as stored. */
export interface DeadLetterRow {
  id: string;
  source_queue: string;
  message_id: string;
  message_key: string;
  envelope_type: string | null;
  project_id: string | null;
  attempts: number;
  last_error: string;
  first_failure_at: number;
  last_failure_at: number;
  /** JSON text. */
  body: string;
  archived_at: number;
}

/** Position in the list order (newest archived first, archive id as tie-break). */
export interface ArchivePosition {
  archivedAt: number;
  id: string;
}

/** How long a failure record may wait for its message: the longest a queue keeps a message. */
export const FAILURE_RECORD_TTL_MS = 14 * 86_400_000;

/** Rows per chunked purge statement, and chunks per request. */
const PURGE_CHUNK = 1_000;
const PURGE_MAX_CHUNKS = 200;

const COLUMNS =
  "id, source_queue, message_id, message_key, envelope_type, project_id, attempts, last_error, first_failure_at, last_failure_at, body, archived_at";

const encoder = new TextEncoder();

/** The body as it is archived and hashed: its JSON text. */
export function bodyJson(body: unknown): string {
  return JSON.stringify(body ?? null);
}

/**
 * A message's identity across redrives: the hex SHA-256 of its body's JSON. The queue gives a
 * redriven message a new id, but a redrive sends the archived body back unchanged, so the hash
 * finds the same failure record and archive row again. Computed only on failure paths.
 */
export async function messageKey(body: unknown): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(bodyJson(body))));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** `WHERE …` for `filter`, plus `extra` conditions, with their parameters in order. */
export function whereClause(
  filter: DlqFilter,
  extra: { sql: string; params: (string | number)[] }[] = [],
): { sql: string; params: (string | number)[] } {
  const conditions: { sql: string; params: (string | number)[] }[] = [];
  if (filter.queue !== undefined) conditions.push({ sql: "source_queue = ?", params: [filter.queue] });
  if (filter.type !== undefined) conditions.push({ sql: "envelope_type = ?", params: [filter.type] });
  if (filter.projectId !== undefined) conditions.push({ sql: "project_id = ?", params: [filter.projectId] });
  if (filter.reason !== undefined) conditions.push({ sql: "instr(last_error, ?) > 0", params: [filter.reason] });
  if (filter.since !== undefined) conditions.push({ sql: "last_failure_at >= ?", params: [filter.since] });
  if (filter.until !== undefined) conditions.push({ sql: "last_failure_at < ?", params: [filter.until] });
  if (filter.ids !== undefined) {
    conditions.push({ sql: "id IN (SELECT value FROM json_each(?))", params: [JSON.stringify(filter.ids)] });
  }
  conditions.push(...extra);
  if (conditions.length === 0) return { sql: "", params: [] };
  return {
    sql: `WHERE ${conditions.map((condition) => condition.sql).join(" AND ")}`,
    params: conditions.flatMap((condition) => condition.params),
  };
}

/** Most reasons `deadLetterStats` lists: a page's worth, the long tail is in the list's filter. */
const STATS_MAX_REASONS = 50;

/** How many archived messages match `filter`, per source queue and per last failure reason. */
export async function deadLetterStats(
  db: D1Database,
  filter: DlqFilter,
): Promise<{ byQueue: { queue: string; count: number }[]; byReason: { reason: string; count: number }[] }> {
  const where = whereClause(filter);
  const [byQueue, byReason] = await db.batch<{ key: string; n: number }>([
    db
      .prepare(
        `SELECT source_queue AS key, COUNT(*) AS n FROM dead_letters ${where.sql} GROUP BY source_queue ORDER BY n DESC, key`,
      )
      .bind(...where.params),
    db
      .prepare(
        `SELECT last_error AS key, COUNT(*) AS n FROM dead_letters ${where.sql} GROUP BY last_error ORDER BY n DESC, key LIMIT ?`,
      )
      .bind(...where.params, STATS_MAX_REASONS),
  ]);
  return {
    byQueue: (byQueue?.results ?? []).map((row) => ({ queue: row.key, count: row.n })),
    byReason: (byReason?.results ?? []).map((row) => ({ reason: row.key, count: row.n })),
  };
}

/** One page of the archive, newest archived first, after `cursor`. Fetches one extra row to tell if there is more. */
export async function listDeadLetters(
  db: D1Database,
  filter: DlqFilter,
  limit: number,
  cursor: ArchivePosition | null,
): Promise<{ rows: DeadLetterRow[]; next: ArchivePosition | null }> {
  const where = whereClause(
    filter,
    cursor ? [{ sql: "(archived_at, id) < (?, ?)", params: [cursor.archivedAt, cursor.id] }] : [],
  );
  const { results } = await db
    .prepare(`SELECT ${COLUMNS} FROM dead_letters ${where.sql} ORDER BY archived_at DESC, id DESC LIMIT ?`)
    .bind(...where.params, limit + 1)
    .all<DeadLetterRow>();
  const rows = results.slice(0, limit);
  const last = rows.at(-1);
  return { rows, next: results.length > limit && last ? { archivedAt: last.archived_at, id: last.id } : null };
}

/** One archived message, or null. */
export async function getDeadLetter(db: D1Database, id: string): Promise<DeadLetterRow | null> {
  return db.prepare(`SELECT ${COLUMNS} FROM dead_letters WHERE id = ?`).bind(id).first<DeadLetterRow>();
}

/** Deletes one archived message; returns what it was, or null when there was none. */
export async function deleteDeadLetter(db: D1Database, id: string): Promise<DeadLetterRow | null> {
  return db.prepare(`DELETE FROM dead_letters WHERE id = ? RETURNING ${COLUMNS}`).bind(id).first<DeadLetterRow>();
}

/** How many archived messages match. */
export async function countDeadLetters(db: D1Database, filter: DlqFilter): Promise<number> {
  const where = whereClause(filter);
  const row = await db
    .prepare(`SELECT COUNT(*) AS n FROM dead_letters ${where.sql}`)
    .bind(...where.params)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/**
 * Deletes the matching archived messages in chunks of 1,000 (each a short statement, so a large
 * purge never holds D1 for long), at most 200,000 per call; `more` says whether to call again.
 */
export async function purgeDeadLetters(db: D1Database, filter: DlqFilter): Promise<{ purged: number; more: boolean }> {
  const where = whereClause(filter);
  let purged = 0;
  for (let chunk = 0; chunk < PURGE_MAX_CHUNKS; chunk++) {
    const result = await db
      .prepare(`DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters ${where.sql} LIMIT ?)`)
      .bind(...where.params, PURGE_CHUNK)
      .run();
    const deleted = result.meta.changes ?? 0;
    purged += deleted;
    if (deleted < PURGE_CHUNK) return { purged, more: false };
  }
  return { purged, more: true };
}

/** Ids and source queues of matching messages in redrive order (oldest archived first), after `after`. */
export async function selectForRedrive(
  db: D1Database,
  filter: DlqFilter,
  after: ArchivePosition | null,
  limit: number,
): Promise<{ id: string; source_queue: string; archived_at: number }[]> {
  const where = whereClause(
    filter,
    after ? [{ sql: "(archived_at, id) > (?, ?)", params: [after.archivedAt, after.id] }] : [],
  );
  const { results } = await db
    .prepare(`SELECT id, source_queue, archived_at FROM dead_letters ${where.sql} ORDER BY archived_at, id LIMIT ?`)
    .bind(...where.params, limit)
    .all<{ id: string; source_queue: string; archived_at: number }>();
  return results;
}

/** The archived rows among `ids` (those still there), for a redrive round. */
export function readForRedriveStatement(db: D1Database, ids: readonly string[]): D1PreparedStatement {
  return db
    .prepare(
      `SELECT id, source_queue, attempts, last_failure_at, body FROM dead_letters
       WHERE id IN (SELECT value FROM json_each(?))`,
    )
    .bind(JSON.stringify(ids));
}

/** A message the redrive sent: the archive row's version when it was read, and where it went. */
export interface Redriven {
  id: string;
  attempts: number;
  lastFailureAt: number;
  /** The queue it was sent to (its failures are recorded under this name). */
  queue: string;
}

/**
 * After a redrive's send resolved: carries each row's history (attempts, first failure, last error,
 * archive id) into `message_failures` under the queue it was sent to, so that if it fails again it
 * is archived under the same id with its attempts added up, then deletes the row. Both statements
 * apply only to rows still at the version the redrive read: a row archived again in between (its
 * redriven copy already failed) is left alone, so nothing archived is ever lost.
 */
export function settleRedrivenStatements(db: D1Database, moved: readonly Redriven[]): D1PreparedStatement[] {
  if (moved.length === 0) return [];
  const versions = JSON.stringify(moved.map((entry) => [entry.id, entry.attempts, entry.lastFailureAt, entry.queue]));
  const matching = `FROM dead_letters d JOIN json_each(?) j
    ON d.id = json_extract(j.value, '$[0]')
   AND d.attempts = json_extract(j.value, '$[1]')
   AND d.last_failure_at = json_extract(j.value, '$[2]')`;
  return [
    db
      .prepare(
        // `WHERE true`: SQLite needs it to parse an upsert whose SELECT has a join.
        `INSERT INTO message_failures (source_queue, message_key, message_id, attempts, prior_attempts, last_error,
           first_failure_at, last_failure_at, archive_id)
         SELECT json_extract(j.value, '$[3]'), d.message_key, d.message_id, 0, d.attempts, d.last_error,
           d.first_failure_at, d.last_failure_at, d.id
         ${matching} WHERE true
         ON CONFLICT(source_queue, message_key) DO UPDATE SET
           prior_attempts = excluded.prior_attempts,
           archive_id = excluded.archive_id,
           first_failure_at = min(message_failures.first_failure_at, excluded.first_failure_at)`,
      )
      .bind(versions),
    db.prepare(`DELETE FROM dead_letters WHERE id IN (SELECT d.id ${matching})`).bind(versions),
  ];
}
