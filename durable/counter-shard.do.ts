import { DurableObject } from "cloudflare:workers";
import { doublingMs } from "../lib/backoff.ts";
import { config } from "../lib/config.ts";
import { applyFlush, readCounter } from "../lib/counters.d1.ts";
import { D1Client, type D1Stats } from "../lib/d1.ts";
import { fault } from "../lib/faults.ts";
import { hashToShard } from "../lib/hash.ts";
import { describeError, log } from "../lib/log.ts";
import { type Result, err, ok } from "../lib/result.ts";
import type { CounterScope, Increment } from "../schemas/counter.schema.ts";
import { COUNTER_SHARD_MIGRATIONS, type HeldRow } from "./counter-shard.migrations.ts";
import { FLUSH_BACKOFF_CAP_MS, type Held, ShardTables } from "./shard-kit.ts";
import { applySchema } from "./sql-schema.ts";

/** Flush at once when this many increments are pending. */
export const COUNTER_FLUSH_THRESHOLD = 100;
/** Increments per flush: 1,400 rows of 7 columns make 100 ledger statements, under D1's 1,000 queries. */
export const COUNTER_FLUSH_MAX = 1_400;

/** Everything the shard holds, pending or in flight (scalar MIN() would turn one empty side into NULL). */
const HELD = "(SELECT received_at FROM pending UNION ALL SELECT received_at FROM inflight)";

export interface ApplyValue {
  /** Increments new to this shard, now durably held. */
  stored: number;
  /** Increments this shard had already seen. */
  duplicates: number;
}
export type ApplyError = { reason: "storage_failed"; message: string };

export interface CounterShardStatus {
  pending: number;
  inflight: number;
  oldestHeldAt: number | null;
  flushFailures: number;
  ledgerSize: number;
  alarmAt: number | null;
  /** Alarm invocations since this instance started (in memory, for the benchmark). */
  alarms: number;
  d1: D1Stats;
}

/**
 * One hash shard of the counters pipeline (shard = fnv1a32(`scope:key`) % SHARD_COUNT). Dedupes
 * increments by id, holds them in SQLite, and flushes them to D1 exactly once (lib/counters.d1.ts)
 * 5 s after the oldest arrived or at once when 100 are pending. Reads add what it still holds.
 */
/** The Durable Object name of counter shard `index`. */
export function counterShardName(index: number): string {
  return `counters-${index}`;
}

/** The shard owning a counter: every field of one (scope, key) lives on one shard. */
export function counterShardOf(scope: string, key: string, shardCount: number): number {
  return hashToShard(`${scope}:${key}`, shardCount);
}

/** Counter shard `index` (0 ≤ index < SHARD_COUNT). */
export function counterShard(env: Pick<Env, "COUNTER_SHARD">, index: number): DurableObjectStub<CounterShard> {
  return env.COUNTER_SHARD.getByName(counterShardName(index));
}

export class CounterShard extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #tables: ShardTables;
  readonly #d1: D1Client;
  #alarms = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#tables = new ShardTables(this.#sql);
    this.#d1 = new D1Client(env.DB);
    applySchema(ctx.storage, COUNTER_SHARD_MIGRATIONS);
  }

  /**
   * Durably holds the increments not seen before. With `persist: false` (COUNTER_DO_MODE=shadow)
   * it only acknowledges: the direct path is the one writing, the shard path is being exercised.
   */
  async apply(increments: Increment[], persist = true): Promise<Result<ApplyValue, ApplyError>> {
    fault("shard.ingest", { shard: this.#name() });
    if (!persist) return ok({ stored: 0, duplicates: 0 });
    const now = Date.now();
    let stored = 0;
    try {
      this.ctx.storage.transactionSync(() => {
        for (const inc of this.#tables.admit(increments, now)) {
          this.#sql.exec(
            "INSERT INTO pending (id, scope, key, field, delta, received_at) VALUES (?, ?, ?, ?, ?, ?)",
            inc.id,
            inc.scope,
            inc.key,
            inc.field,
            inc.delta,
            now,
          );
          stored++;
        }
        fault("shard.ingest.after_write", { shard: this.#name() });
      });
    } catch (error) {
      log.error("counter_apply_failed", {
        shard: this.#name(),
        increments: increments.length,
        error: describeError(error),
      });
      return err({ reason: "storage_failed", message: describeError(error) });
    }
    await this.#arm(now);
    return ok({ stored, duplicates: increments.length - stored });
  }

  /** The counter's values: D1 plus what this shard holds that D1 has not applied yet. */
  async read(scope: CounterScope, key: string): Promise<Record<string, number>> {
    // Snapshot what is held before the D1 round trip; readCounter checks those ids against the
    // D1 ledger in the same batch as the values, so a flush finishing meanwhile is not double counted.
    const held = this.#sql
      .exec<HeldRow>(
        `SELECT id, scope, key, field, delta, received_at FROM inflight WHERE scope = ? AND key = ?
         UNION ALL SELECT id, scope, key, field, delta, received_at FROM pending WHERE scope = ? AND key = ?`,
        scope,
        key,
        scope,
        key,
      )
      .toArray();
    return readCounter(this.#d1, scope, key, held);
  }

  /**
   * The reconcile job's safety net: if increments older than `olderThanMs` are still held, flush
   * now. Returns what it found.
   */
  async reconcile(olderThanMs: number): Promise<{ stranded: number; flushed: number; ok: boolean }> {
    const cutoff = Date.now() - olderThanMs;
    const stranded = this.#sql
      .exec<{ n: number }>(
        "SELECT (SELECT COUNT(*) FROM pending WHERE received_at < ?1) + (SELECT COUNT(*) FROM inflight WHERE received_at < ?1) AS n",
        cutoff,
      )
      .one().n;
    if (stranded === 0) return { stranded: 0, flushed: 0, ok: true };
    let flushed = 0;
    let outcome = await this.#flush();
    while (outcome.ok && outcome.flushed > 0) {
      flushed += outcome.flushed;
      outcome = await this.#flush();
    }
    await this.#arm(Date.now());
    return { stranded, flushed, ok: outcome.ok };
  }

  async status(): Promise<CounterShardStatus> {
    const counts = this.#sql
      .exec<{ pending: number; inflight: number; oldest: number | null }>(
        `SELECT (SELECT COUNT(*) FROM pending) AS pending, (SELECT COUNT(*) FROM inflight) AS inflight,
                (SELECT MIN(received_at) FROM ${HELD}) AS oldest`,
      )
      .one();
    return {
      pending: counts.pending,
      inflight: counts.inflight,
      oldestHeldAt: counts.oldest,
      flushFailures: this.#tables.get("flush_failures"),
      ledgerSize: this.#tables.ledgerSize(),
      alarmAt: await this.ctx.storage.getAlarm(),
      alarms: this.#alarms,
      d1: { ...this.#d1.stats },
    };
  }

  override async alarm(): Promise<void> {
    this.#alarms++;
    const now = Date.now();
    if (now >= this.#tables.get("next_prune_at")) this.#tables.prune(now);
    for (let i = 0; i < 4; i++) {
      const outcome = await this.#flush();
      if (!outcome.ok) {
        const failures = this.#tables.get("flush_failures");
        await this.ctx.storage.setAlarm(Date.now() + doublingMs(failures, 1_000, FLUSH_BACKOFF_CAP_MS));
        return;
      }
      if (outcome.flushed < COUNTER_FLUSH_MAX) break;
    }
    await this.#arm(Date.now());
  }

  /**
   * Flushes the in-flight set (retrying it with the same flush id), or, if there is none, moves
   * the oldest pending increments into a new one first. In-flight rows are deleted only after D1
   * has the flush — or reports that an earlier attempt of it committed.
   */
  async #flush(): Promise<{ ok: true; flushed: number } | { ok: false }> {
    let flushId = this.#sql.exec<{ flush_id: string }>("SELECT flush_id FROM flush").toArray()[0]?.flush_id;
    if (flushId === undefined) {
      const id = crypto.randomUUID();
      const moved = this.ctx.storage.transactionSync(() => {
        this.#sql.exec(
          `INSERT INTO inflight SELECT id, scope, key, field, delta, received_at FROM pending
           ORDER BY received_at LIMIT ?`,
          COUNTER_FLUSH_MAX,
        );
        const n = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM inflight").one().n;
        if (n === 0) return 0;
        this.#sql.exec("DELETE FROM pending WHERE id IN (SELECT id FROM inflight)");
        this.#sql.exec("INSERT INTO flush (flush_id, started_at) VALUES (?, ?)", id, Date.now());
        return n;
      });
      if (moved === 0) return { ok: true, flushed: 0 };
      flushId = id;
    }
    const rows = this.#sql.exec<HeldRow>("SELECT id, scope, key, field, delta, received_at FROM inflight").toArray();
    try {
      const outcome = await applyFlush(this.#d1, flushId, this.#name(), rows);
      fault("shard.flush.after_d1_commit", { shard: this.#name(), rows: rows.length });
      if (outcome === "already_applied") log.info("counter_flush_repeated", { shard: this.#name(), flush_id: flushId });
    } catch (error) {
      const failures = this.#tables.get("flush_failures") + 1;
      this.#tables.set("flush_failures", failures);
      log.error("counter_flush_failed", {
        shard: this.#name(),
        flush_id: flushId,
        increments: rows.length,
        attempt: failures,
        retry_in_ms: doublingMs(failures, 1_000, FLUSH_BACKOFF_CAP_MS),
        error: describeError(error),
      });
      return { ok: false };
    }
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM inflight");
      this.#sql.exec("DELETE FROM flush");
    });
    if (this.#tables.get("flush_failures") > 0) {
      log.info("counter_flush_recovered", { shard: this.#name(), after_failures: this.#tables.get("flush_failures") });
      this.#tables.set("flush_failures", 0);
    }
    return { ok: true, flushed: rows.length };
  }

  async #arm(now: number): Promise<void> {
    const held = this.#sql.exec<Held>(`SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM ${HELD}`).one();
    await this.#tables.arm(this.ctx.storage, now, held, COUNTER_FLUSH_THRESHOLD, config(this.env).FLUSH_DELAY_MS);
  }

  #name(): string {
    return this.ctx.id.name ?? this.ctx.id.toString();
  }
}
