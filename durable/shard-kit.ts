import { doublingMs } from "../lib/backoff.ts";

/**
 * Pieces shared by the buffering shards (RuntimeEventShard, CounterShard): the dedupe ledger,
 * the small integer state table, and alarm arming. Each shard's schema creates the tables:
 *   seen  (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL) + index on seen_at
 *   state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)
 */

/**
 * How long an id is remembered. At least the queue's retention (4 days) so any redelivery the
 * queue can still make is recognised; D1 (primary keys, the increment ledger) covers anything older.
 */
export const LEDGER_RETENTION_MS = 4 * 24 * 3_600_000 + 3_600_000;
export const PRUNE_INTERVAL_MS = 3_600_000;
/** Failed flushes back off 1 s, 2 s, 4 s, … up to this. */
export const FLUSH_BACKOFF_CAP_MS = 5 * 60_000;

export type ShardStateKey = "flush_failures" | "next_prune_at" | "ledger_size";

export class ShardTables {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /**
   * Records the items' ids in the ledger and returns the items it had not seen, each id once (its
   * first occurrence in `items`), in order. One statement for the whole call, not one per item.
   * Call inside the caller's transaction.
   */
  admit<T extends { id: string }>(items: readonly T[], now: number): T[] {
    if (items.length === 0) return [];
    const fresh = new Set(
      this.#sql
        .exec<{ id: string }>(
          "INSERT INTO seen (id, seen_at) SELECT value, ? FROM json_each(?) WHERE true ON CONFLICT(id) DO NOTHING RETURNING id",
          now,
          JSON.stringify(items.map((item) => item.id)),
        )
        .toArray()
        .map((row) => row.id),
    );
    this.#addToLedgerSize(fresh.size);
    // `delete` is true only the first time: a second copy of an id in the same call is a duplicate.
    return items.filter((item) => fresh.delete(item.id));
  }

  /**
   * Ids in the ledger. Kept as a count in `state` (updated in the same transaction as the ledger)
   * because the ledger holds four days of ids: counting it would scan millions of rows on every
   * `GET /v1/admin/metrics`. A shard from before the count existed counts once, here.
   */
  ledgerSize(): number {
    const kept = this.#sql.exec<{ value: number }>("SELECT value FROM state WHERE key = 'ledger_size'").toArray()[0];
    if (kept) return kept.value;
    const counted = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM seen").one().n;
    this.set("ledger_size", counted);
    return counted;
  }

  /** A no-op until `ledgerSize` has counted once; from then on the count follows every change. */
  #addToLedgerSize(delta: number): void {
    if (delta !== 0) this.#sql.exec("UPDATE state SET value = value + ? WHERE key = 'ledger_size'", delta);
  }

  ledgerEmpty(): boolean {
    return this.#sql.exec("SELECT 1 FROM seen LIMIT 1").toArray().length === 0;
  }

  /** Deletes ledger rows past retention; returns how many. */
  prune(now: number): number {
    this.#sql.exec("DELETE FROM seen WHERE seen_at < ?", now - LEDGER_RETENTION_MS);
    // Rows deleted (a cursor's rowsWritten also counts the seen_at index's entries).
    const pruned = this.#sql.exec<{ n: number }>("SELECT changes() AS n").one().n;
    this.#addToLedgerSize(-pruned);
    this.set("next_prune_at", now + PRUNE_INTERVAL_MS);
    return pruned;
  }

  get(key: ShardStateKey): number {
    return this.#sql.exec<{ value: number }>("SELECT value FROM state WHERE key = ?", key).toArray()[0]?.value ?? 0;
  }

  set(key: ShardStateKey, value: number): void {
    this.#sql.exec(
      "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  /** Arms the shard's alarm for its next flush (see `flushDue`) or ledger prune, whichever is first. */
  async arm(storage: DurableObjectStorage, now: number, held: Held, threshold: number, delayMs: number): Promise<void> {
    const failures = this.get("flush_failures");
    await armAlarm(storage, this.nextDue(now, flushDue(now, held, failures, threshold, delayMs)), failures > 0);
  }

  /**
   * When the alarm should next fire: the flush deadline `flushDue` (null if nothing is buffered)
   * or the next ledger prune, whichever is first.
   */
  nextDue(now: number, flushDue: number | null): number | null {
    if (this.get("next_prune_at") === 0) this.set("next_prune_at", now + PRUNE_INTERVAL_MS);
    if (this.ledgerEmpty()) return flushDue;
    const pruneAt = this.get("next_prune_at");
    return flushDue === null ? pruneAt : Math.min(flushDue, pruneAt);
  }
}

/** A shard's buffer at a glance: how many rows it holds and when the oldest arrived. */
export type Held = {
  n: number;
  oldest: number | null;
};

/**
 * When the buffer must be flushed: at once when `threshold` rows wait, else `delayMs` after the
 * oldest row; while flushes fail, after the backoff (1 s, 2 s, 4 s, … capped).
 */
export function flushDue(now: number, held: Held, failures: number, threshold: number, delayMs: number): number | null {
  if (held.n === 0) return null;
  if (failures > 0) return now + doublingMs(failures, 1_000, FLUSH_BACKOFF_CAP_MS);
  if (held.n >= threshold) return now;
  return (held.oldest ?? now) + delayMs;
}

/**
 * Arms the alarm for `due`. Never moves an armed alarm later, and never earlier while flushes are
 * failing (then the armed alarm holds the backoff, so an outage under steady traffic never
 * becomes a tight loop).
 */
export async function armAlarm(storage: DurableObjectStorage, due: number | null, failing: boolean): Promise<void> {
  if (due === null) return;
  const current = await storage.getAlarm();
  if (current !== null && (failing || current <= due)) return;
  await storage.setAlarm(due);
}
