import { DurableObject } from "cloudflare:workers";
import { doublingMs } from "../lib/backoff.ts";
import { config } from "../lib/config.ts";
import { D1Client, type D1Stats } from "../lib/d1.ts";
import { fault } from "../lib/faults.ts";
import { describeError, log } from "../lib/log.ts";
import { type Result, err, ok } from "../lib/result.ts";
import { insertRuntimeEventStatements, writeEventAggregates } from "../lib/runtime-events.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { type BufferRow, RUNTIME_EVENT_SHARD_MIGRATIONS, type StateKey } from "./runtime-event-shard.migrations.ts";
import { applySchema } from "./sql-schema.ts";

/** Flush as soon as this many rows are buffered. */
export const FLUSH_THRESHOLD_ROWS = 100;
/**
 * Rows per D1 batch. 1,600 rows of 6 columns make 100 statements of 16 rows; an alarm runs at
 * most `FLUSH_BATCHES_PER_ALARM` of them so one invocation stays well under D1's 1,000 queries.
 */
export const FLUSH_BATCH_ROWS = 1_600;
export const FLUSH_BATCHES_PER_ALARM = 4;
/** Failed flushes back off 1 s, 2 s, 4 s, … up to this. */
export const FLUSH_BACKOFF_CAP_MS = 5 * 60_000;
/**
 * How long an event id is remembered. At least the queue's retention (4 days), so any redelivery
 * the queue can still make is recognised here; D1's primary key covers anything older.
 */
export const LEDGER_RETENTION_MS = 4 * 24 * 3_600_000 + 3_600_000;
export const PRUNE_INTERVAL_MS = 3_600_000;

export interface IngestValue {
  /** Events new to this shard, now durably buffered. */
  stored: number;
  /** Events this shard had already seen (redeliveries, client retries). */
  duplicates: number;
}

export type IngestError = { reason: "storage_failed"; message: string };

export interface ShardStatus {
  buffered: number;
  oldestBufferedAt: number | null;
  ledgerSize: number;
  flushFailures: number;
  alarmAt: number | null;
  d1: D1Stats;
  schemaVersion: number;
}

/**
 * One hash shard of the telemetry pipeline. Receives the events of its shard from the consumer,
 * remembers every id it has stored (dedupe ledger), buffers new events in SQLite, and flushes
 * the buffer to D1 in multi-row batches: when ≥ 100 rows are waiting, or 5 s after the oldest
 * one arrived. A row leaves the buffer only after D1 committed it.
 */
export class RuntimeEventShard extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #d1: D1Client;
  readonly #schemaVersion: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#d1 = new D1Client(env.DB);
    this.#schemaVersion = applySchema(ctx.storage, RUNTIME_EVENT_SHARD_MIGRATIONS);
  }

  /**
   * Stores the events not seen before, durably, in one transaction. The reply is sent only after
   * the SQLite write is durable (output gate), so the consumer may ack once it has it.
   */
  async ingest(events: RuntimeEvent[]): Promise<Result<IngestValue, IngestError>> {
    fault("shard.ingest", { shard: this.#name() });
    const now = Date.now();
    let stored = 0;
    try {
      this.ctx.storage.transactionSync(() => {
        for (const event of events) {
          const inserted = this.#sql.exec(
            "INSERT INTO seen (id, seen_at) VALUES (?, ?) ON CONFLICT(id) DO NOTHING",
            event.id,
            now,
          ).rowsWritten;
          if (inserted === 0) continue;
          this.#sql.exec(
            "INSERT INTO buffer (id, project_id, type, ts, data, received_at) VALUES (?, ?, ?, ?, ?, ?)",
            event.id,
            event.project_id,
            event.type,
            event.ts,
            JSON.stringify(event.data),
            now,
          );
          stored++;
        }
        // Inside the transaction: a crash here rolls back every row of this call.
        fault("shard.ingest.after_write", { shard: this.#name() });
      });
    } catch (error) {
      log.error("shard_ingest_failed", { shard: this.#name(), events: events.length, error: describeError(error) });
      return err({ reason: "storage_failed", message: describeError(error) });
    }
    await this.#arm(now);
    return ok({ stored, duplicates: events.length - stored });
  }

  /** Flushes everything buffered now (on-call and the reconcile job); returns rows flushed. */
  async flushNow(): Promise<Result<{ flushed: number }, { reason: "flush_failed"; message: string }>> {
    const outcome = await this.#flush();
    await this.#arm(Date.now());
    return outcome.ok ? ok({ flushed: outcome.flushed }) : err({ reason: "flush_failed", message: outcome.message });
  }

  /** Buffer, ledger and flush health of this shard. */
  async status(): Promise<ShardStatus> {
    const buffer = this.#sql
      .exec<{ n: number; oldest: number | null }>("SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM buffer")
      .one();
    const ledger = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM seen").one();
    return {
      buffered: buffer.n,
      oldestBufferedAt: buffer.oldest,
      ledgerSize: ledger.n,
      flushFailures: this.#state("flush_failures"),
      alarmAt: await this.ctx.storage.getAlarm(),
      d1: { ...this.#d1.stats },
      schemaVersion: this.#schemaVersion,
    };
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    if (now >= this.#state("next_prune_at")) this.#prune(now);
    for (let i = 0; i < FLUSH_BATCHES_PER_ALARM; i++) {
      const outcome = await this.#flush();
      if (!outcome.ok) {
        // Back off: 1 s, 2 s, 4 s, … capped. The buffer stays; nothing is lost while D1 is down.
        const failures = this.#state("flush_failures");
        await this.ctx.storage.setAlarm(Date.now() + doublingMs(failures, 1_000, FLUSH_BACKOFF_CAP_MS));
        return;
      }
      if (outcome.flushed < FLUSH_BATCH_ROWS) break;
    }
    await this.#arm(Date.now());
  }

  /**
   * Writes the oldest buffered rows to D1 (one batch, idempotent inserts), then Analytics Engine,
   * and only then deletes them from the buffer. On failure the buffer is untouched and the
   * failure count drives the backoff in `#arm`.
   */
  async #flush(): Promise<{ ok: true; flushed: number } | { ok: false; message: string }> {
    const rows = this.#sql
      .exec<BufferRow>(
        "SELECT seq, id, project_id, type, ts, data, received_at FROM buffer ORDER BY seq LIMIT ?",
        FLUSH_BATCH_ROWS,
      )
      .toArray();
    const last = rows.at(-1);
    if (!last) return { ok: true, flushed: 0 };
    try {
      await this.#d1.batch(insertRuntimeEventStatements(this.#d1, rows));
      fault("shard.flush.after_d1_commit", { shard: this.#name(), rows: rows.length });
      writeEventAggregates(this.env.EVENTS_AE, rows);
    } catch (error) {
      const failures = this.#state("flush_failures") + 1;
      this.#setState("flush_failures", failures);
      const message = describeError(error);
      log.error("shard_flush_failed", {
        shard: this.#name(),
        rows: rows.length,
        attempt: failures,
        retry_in_ms: doublingMs(failures, 1_000, FLUSH_BACKOFF_CAP_MS),
        error: message,
      });
      return { ok: false, message };
    }
    // Rows that arrived during the D1 round trip have a larger seq and stay buffered.
    this.#sql.exec("DELETE FROM buffer WHERE seq <= ?", last.seq);
    if (this.#state("flush_failures") > 0) {
      log.info("shard_flush_recovered", { shard: this.#name(), after_failures: this.#state("flush_failures") });
      this.#setState("flush_failures", 0);
    }
    return { ok: true, flushed: rows.length };
  }

  /**
   * Sets the alarm to the earliest thing due: a flush (now if ≥ 100 rows wait, else 5 s after the
   * oldest row) and the ledger prune. Never moves an armed alarm later, and never earlier while
   * flushes are failing: then the alarm holds the backoff, so a D1 outage under steady traffic
   * never becomes a tight loop.
   */
  async #arm(now: number): Promise<void> {
    const buffer = this.#sql
      .exec<{ n: number; oldest: number | null }>("SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM buffer")
      .one();
    const failures = this.#state("flush_failures");
    let due: number | null = null;
    if (buffer.n > 0 && buffer.oldest !== null) {
      if (failures > 0) due = now + doublingMs(failures, 1_000, FLUSH_BACKOFF_CAP_MS);
      else if (buffer.n >= FLUSH_THRESHOLD_ROWS) due = now;
      else due = buffer.oldest + config(this.env).FLUSH_DELAY_MS;
    }
    if (this.#state("next_prune_at") === 0) this.#setState("next_prune_at", now + PRUNE_INTERVAL_MS);
    const ledgerEmpty = this.#sql.exec("SELECT 1 FROM seen LIMIT 1").toArray().length === 0;
    if (!ledgerEmpty) {
      const pruneAt = this.#state("next_prune_at");
      due = due === null ? pruneAt : Math.min(due, pruneAt);
    }
    if (due === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current !== null && (failures > 0 || current <= due)) return;
    await this.ctx.storage.setAlarm(due);
  }

  #prune(now: number): void {
    const cutoff = now - LEDGER_RETENTION_MS;
    const pruned = this.#sql.exec("DELETE FROM seen WHERE seen_at < ?", cutoff).rowsWritten;
    this.#setState("next_prune_at", now + PRUNE_INTERVAL_MS);
    if (pruned > 0) log.info("shard_ledger_pruned", { shard: this.#name(), pruned });
  }

  #state(key: StateKey): number {
    const row = this.#sql.exec<{ value: number }>("SELECT value FROM state WHERE key = ?", key).toArray()[0];
    return row?.value ?? 0;
  }

  #setState(key: StateKey, value: number): void {
    this.#sql.exec(
      "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  #name(): string {
    return this.ctx.id.name ?? this.ctx.id.toString();
  }
}
