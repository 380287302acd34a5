import type { CounterScope, Increment } from "../schemas/counter.schema.ts";
import { type D1Client, multiRowInserts } from "./d1.ts";
import { describeError } from "./log.ts";

/**
 * Applying increments to D1 exactly once.
 *
 * One flush = one D1 batch (one transaction) of:
 *  1. the flush id into `counter_flushes` — a repeated flush fails here and the whole batch rolls
 *     back, so a flush retried after a commit whose answer was lost changes nothing;
 *  2. each increment into `counter_increments` with `ON CONFLICT(id) DO NOTHING` — an increment
 *     already applied by any earlier flush (another shard after a shard-count change, a client
 *     retry) keeps its old row and flush id;
 *  3. a zero row for every (scope, key, field) the flush touches;
 *  4. one UPDATE adding, per (scope, key, field), the sum of the deltas whose ledger row carries
 *     this flush id — i.e. only the increments new to D1 — clamped at 0.
 * Deltas are merged per (scope, key, field) by step 4, so hot counters cost one row update per flush.
 */
export function flushStatements(
  d1: D1Client,
  flushId: string,
  source: string,
  increments: readonly Increment[],
  now: number,
): D1PreparedStatement[] {
  return [
    d1
      .prepare("INSERT INTO counter_flushes (flush_id, source, increments, flushed_at) VALUES (?, ?, ?, ?)")
      .bind(flushId, source, increments.length, now),
    ...multiRowInserts(
      d1,
      {
        head: "INSERT INTO counter_increments (id, flush_id, scope, key, field, delta, applied_at)",
        tail: "ON CONFLICT(id) DO NOTHING",
        columns: 7,
      },
      increments.map((inc) => [inc.id, flushId, inc.scope, inc.key, inc.field, inc.delta, now]),
    ),
    d1
      .prepare(
        `INSERT INTO counters (scope, key, field, value, updated_at)
         SELECT DISTINCT scope, key, field, 0, ? FROM counter_increments WHERE flush_id = ?
         ON CONFLICT(scope, key, field) DO NOTHING`,
      )
      .bind(now, flushId),
    d1
      .prepare(
        `UPDATE counters SET value = MAX(0, counters.value + d.total), updated_at = ?
         FROM (SELECT scope, key, field, SUM(delta) AS total FROM counter_increments
               WHERE flush_id = ? GROUP BY scope, key, field) AS d
         WHERE counters.scope = d.scope AND counters.key = d.key AND counters.field = d.field`,
      )
      .bind(now, flushId),
  ];
}

/** True when a flush batch failed because this flush id was committed before (a repeated flush). */
export function isRepeatedFlush(error: unknown): boolean {
  return /UNIQUE constraint failed: counter_flushes\.flush_id/i.test(describeError(error));
}

/**
 * Runs a flush. Resolves `"applied"` when this call committed it, `"already_applied"` when an
 * earlier attempt with the same flush id had (nothing changed this time); rejects otherwise.
 */
export async function applyFlush(
  d1: D1Client,
  flushId: string,
  source: string,
  increments: readonly Increment[],
  now: number = Date.now(),
): Promise<"applied" | "already_applied"> {
  try {
    await d1.batch(flushStatements(d1, flushId, source, increments, now));
    return "applied";
  } catch (error) {
    if (isRepeatedFlush(error)) return "already_applied";
    throw error;
  }
}

/** A pending or in-flight increment a shard still holds, for read-your-writes. */
export interface HeldIncrement {
  id: string;
  field: string;
  delta: number;
}

/**
 * Current values of one counter as D1 has them, plus the increments a shard still holds that D1 has
 * not applied yet. The held ids are checked against the D1 ledger in the same batch (one snapshot),
 * so an increment a concurrent flush has just committed is never counted twice.
 */
export async function readCounter(
  d1: D1Client,
  scope: CounterScope,
  key: string,
  held: readonly HeldIncrement[] = [],
): Promise<Record<string, number>> {
  const statements = [d1.prepare("SELECT field, value FROM counters WHERE scope = ? AND key = ?").bind(scope, key)];
  if (held.length > 0) {
    statements.push(
      d1
        .prepare("SELECT id FROM counter_increments WHERE id IN (SELECT value FROM json_each(?))")
        .bind(JSON.stringify(held.map((inc) => inc.id))),
    );
  }
  const [stored, applied] = await d1.batch<{ field?: string; value?: number; id?: string }>(statements);
  const values: Record<string, number> = {};
  for (const row of stored?.results ?? []) {
    if (row.field !== undefined && row.value !== undefined) values[row.field] = row.value;
  }
  const appliedIds = new Set((applied?.results ?? []).map((row) => row.id));
  const deltas = new Map<string, number>();
  for (const inc of held) {
    if (!appliedIds.has(inc.id)) deltas.set(inc.field, (deltas.get(inc.field) ?? 0) + inc.delta);
  }
  for (const [field, delta] of deltas) values[field] = Math.max(0, (values[field] ?? 0) + delta);
  return values;
}
