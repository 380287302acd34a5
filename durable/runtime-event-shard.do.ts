import { DurableObject } from "cloudflare:workers";
import { doublingMs } from "../lib/backoff.ts";
import { config } from "../lib/config.ts";
import { D1Client, type D1Stats } from "../lib/d1.ts";
import { fault } from "../lib/faults.ts";
import { describeError, log } from "../lib/log.ts";
import { type Result, err, ok } from "../lib/result.ts";
import {
  type EventAggregate,
  type RuntimeEventRow,
  chunkRows,
  insertEventChunkStatements,
  writeEventAggregates,
} from "../lib/runtime-events.d1.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { type ChunkRow, RUNTIME_EVENT_SHARD_MIGRATIONS, insertChunk } from "./runtime-event-shard.migrations.ts";
import { FLUSH_BACKOFF_CAP_MS, type Held, ShardTables } from "./shard-kit.ts";
import { applySchema } from "./sql-schema.ts";

/** Flush as soon as this many rows are buffered. */
export const FLUSH_THRESHOLD_ROWS = 100;
/**
 * Rows per D1 batch (at least one whole chunk, so it may exceed this by one ingest's chunk). With
 * json_each inserts (~90 KB of rows per statement) 10,000 rows of a few hundred bytes are a few
 * dozen statements; fewer, larger transactions are what D1's single writer is fastest at
 * (bench/investigation.md).
 */
export const FLUSH_BATCH_ROWS = 10_000;
/**
 * Bytes of rows per D1 batch: ≤ ~56 statements of 90 KB, so `FLUSH_BATCHES_PER_ALARM` batches stay
 * far under D1's 1,000 queries per invocation however large the events are.
 */
export const FLUSH_BATCH_BYTES = 5_000_000;
export const FLUSH_BATCHES_PER_ALARM = 4;
export { FLUSH_BACKOFF_CAP_MS, LEDGER_RETENTION_MS, PRUNE_INTERVAL_MS } from "./shard-kit.ts";

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
  /** Alarm invocations since this instance started (in memory, for the benchmark). */
  alarms: number;
  d1: D1Stats;
  schemaVersion: number;
}

/**
 * One hash shard of the telemetry pipeline. Receives the events of its shard from the consumer,
 * remembers every id it has stored (dedupe ledger), buffers new events in SQLite, and flushes
 * the buffer to D1 in multi-row batches: when ≥ 100 rows are waiting, or 5 s after the oldest
 * one arrived. A row leaves the buffer only after D1 committed it.
 *
 * The buffer is a table of chunks, one per ingest call (split at ≤ 90 KB), each already in the
 * JSON form the D1 insert binds and carrying its Analytics Engine aggregates: an event costs one
 * ledger insert in the shard's SQLite, and flushing re-encodes nothing. `buffered_events` is a
 * view of it with one row per event.
 */
/** The Durable Object name of telemetry shard `index`. Stable: changing it orphans buffers. */
export function telemetryShardName(index: number): string {
  return `events-${index}`;
}

/** Telemetry shard `index` (0 ≤ index < SHARD_COUNT). */
export function telemetryShard(
  env: Pick<Env, "RUNTIME_EVENT_SHARD">,
  index: number,
): DurableObjectStub<RuntimeEventShard> {
  return env.RUNTIME_EVENT_SHARD.getByName(telemetryShardName(index));
}

export class RuntimeEventShard extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #tables: ShardTables;
  readonly #d1: D1Client;
  readonly #schemaVersion: number;
  #alarms = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#tables = new ShardTables(this.#sql);
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
        const fresh = this.#tables
          .admit(events, now)
          .map((event): RuntimeEventRow => ({ ...event, data: JSON.stringify(event.data), received_at: now }));
        for (const chunk of chunkRows(fresh)) insertChunk(this.#sql, chunk, now);
        stored = fresh.length;
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
    const buffer = this.#held();
    return {
      buffered: buffer.n,
      oldestBufferedAt: buffer.oldest,
      ledgerSize: this.#tables.ledgerSize(),
      flushFailures: this.#tables.get("flush_failures"),
      alarmAt: await this.ctx.storage.getAlarm(),
      alarms: this.#alarms,
      d1: { ...this.#d1.stats },
      schemaVersion: this.#schemaVersion,
    };
  }

  override async alarm(): Promise<void> {
    this.#alarms++;
    const now = Date.now();
    if (now >= this.#tables.get("next_prune_at")) {
      const pruned = this.#tables.prune(now);
      if (pruned > 0) log.info("shard_ledger_pruned", { shard: this.#name(), pruned });
    }
    for (let i = 0; i < FLUSH_BATCHES_PER_ALARM; i++) {
      const outcome = await this.#flush();
      if (!outcome.ok) {
        // Back off: 1 s, 2 s, 4 s, … capped. The buffer stays; nothing is lost while D1 is down.
        const failures = this.#tables.get("flush_failures");
        await this.ctx.storage.setAlarm(Date.now() + doublingMs(failures, 1_000, FLUSH_BACKOFF_CAP_MS));
        return;
      }
      if (outcome.flushed === 0 || this.#held().n === 0) break;
    }
    await this.#arm(Date.now());
  }

  /**
   * Writes the oldest buffered rows to D1 (one batch, idempotent inserts), then Analytics Engine,
   * and only then deletes them from the buffer. On failure the buffer is untouched and the
   * failure count drives the backoff in `#arm`.
   */
  async #flush(): Promise<{ ok: true; flushed: number } | { ok: false; message: string }> {
    const chunks = this.#oldestChunks();
    const last = chunks.at(-1);
    if (!last) return { ok: true, flushed: 0 };
    const rows = chunks.reduce((sum, chunk) => sum + chunk.n, 0);
    try {
      await this.#d1.batch(insertEventChunkStatements(this.#d1, chunks));
      fault("shard.flush.after_d1_commit", { shard: this.#name(), rows });
      writeEventAggregates(this.env.EVENTS_AE, this.#aggregatesUpTo(last.seq));
    } catch (error) {
      const failures = this.#tables.get("flush_failures") + 1;
      this.#tables.set("flush_failures", failures);
      const message = describeError(error);
      log.error("shard_flush_failed", {
        shard: this.#name(),
        rows,
        attempt: failures,
        retry_in_ms: doublingMs(failures, 1_000, FLUSH_BACKOFF_CAP_MS),
        error: message,
      });
      return { ok: false, message };
    }
    // Chunks that arrived during the D1 round trip have a larger seq and stay buffered.
    this.#sql.exec("DELETE FROM chunks WHERE seq <= ?", last.seq);
    if (this.#tables.get("flush_failures") > 0) {
      log.info("shard_flush_recovered", { shard: this.#name(), after_failures: this.#tables.get("flush_failures") });
      this.#tables.set("flush_failures", 0);
    }
    return { ok: true, flushed: rows };
  }

  /** Arms the alarm for the next flush (now if ≥ 100 rows wait, else 5 s after the oldest) or prune. */
  async #arm(now: number): Promise<void> {
    await this.#tables.arm(this.ctx.storage, now, this.#held(), FLUSH_THRESHOLD_ROWS, config(this.env).FLUSH_DELAY_MS);
  }

  /** Events buffered and when the oldest arrived. */
  #held(): Held {
    return this.#sql
      .exec<{ n: number; oldest: number | null }>(
        "SELECT COALESCE(SUM(n), 0) AS n, MIN(received_at) AS oldest FROM chunks",
      )
      .one();
  }

  /** The Analytics Engine aggregates of the chunks up to `seq`, merged by SQLite (no JSON in JS). */
  #aggregatesUpTo(seq: number): EventAggregate[] {
    return this.#sql
      .exec<{ project: string; type: string; count: number; min_ts: number; max_ts: number }>(
        `SELECT value->>0 AS project, value->>1 AS type, SUM(value->>2) AS count, MIN(value->>3) AS min_ts,
                MAX(value->>4) AS max_ts
         FROM chunks, json_each(chunks.aggregates) WHERE chunks.seq <= ? GROUP BY 1, 2`,
        seq,
      )
      .toArray()
      .map((row): EventAggregate => [row.project, row.type, row.count, row.min_ts, row.max_ts]);
  }

  /** The oldest chunks, up to `FLUSH_BATCH_ROWS` events and `FLUSH_BATCH_BYTES` (at least one chunk). */
  #oldestChunks(): Pick<ChunkRow, "seq" | "rows" | "n" | "bytes">[] {
    const picked: Pick<ChunkRow, "seq" | "rows" | "n" | "bytes">[] = [];
    let rows = 0;
    let bytes = 0;
    const cursor = this.#sql.exec<Pick<ChunkRow, "seq" | "rows" | "n" | "bytes">>(
      "SELECT seq, rows, n, bytes FROM chunks ORDER BY seq",
    );
    for (const chunk of cursor) {
      if (picked.length > 0 && (rows + chunk.n > FLUSH_BATCH_ROWS || bytes + chunk.bytes > FLUSH_BATCH_BYTES)) break;
      picked.push(chunk);
      rows += chunk.n;
      bytes += chunk.bytes;
    }
    return picked;
  }

  #name(): string {
    return this.ctx.id.name ?? this.ctx.id.toString();
  }
}
