import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { type D1Client, JSON_ROWS_BUDGET_BYTES, jsonRowInserts, jsonRowsInsertSql, packJsonRows } from "./d1.ts";

/** A runtime event as stored: the event plus when Shipyard first stored it. */
export type RuntimeEventRow = {
  id: string;
  project_id: string;
  type: string;
  ts: number;
  /** JSON text of the event's `data`. */
  data: string;
  received_at: number;
};

const INSERT = {
  head: "INSERT INTO runtime_events (id, project_id, type, ts, data, received_at)",
  // Idempotent: a re-flush or a duplicate from another path keeps the first row.
  tail: "ON CONFLICT(id) DO NOTHING",
  columns: 6,
} as const;

export function toRow(event: RuntimeEvent, receivedAt: number): RuntimeEventRow {
  return { ...event, data: JSON.stringify(event.data), received_at: receivedAt };
}

/**
 * A run of buffered events in the json_each form a D1 insert binds as is: `rows` is a JSON array
 * of `[id, project_id, type, ts, data, received_at]` tuples (`data` as JSON text), ≤ 90 KB, with
 * the run's Analytics Engine aggregates. A shard buffers these instead of one row per event, so
 * neither storing nor flushing an event re-encodes or re-indexes it.
 */
export interface EventChunk {
  rows: string;
  n: number;
  bytes: number;
  aggregates: EventAggregate[];
}

/** Events of one (project, type): `[project_id, type, count, min ts, max ts]`. */
export type EventAggregate = [project: string, type: string, count: number, minTs: number, maxTs: number];

/** Packs stored-form rows into chunks of ≤ 90 KB of rows, with their aggregates. */
export function chunkRows(rows: readonly RuntimeEventRow[]): EventChunk[] {
  const tuples = rows.map((r) => JSON.stringify([r.id, r.project_id, r.type, r.ts, r.data, r.received_at]));
  return packJsonRows(tuples).map((packed) => ({
    rows: packed.json,
    n: packed.to - packed.from,
    bytes: packed.bytes,
    aggregates: aggregateEvents(rows.slice(packed.from, packed.to)),
  }));
}

/**
 * Joins consecutive chunks into as few json_each inserts as fit 90 KB each (chunks from small
 * ingests are small; joining two JSON arrays is a string splice, nothing is re-parsed).
 */
export function insertEventChunkStatements(
  d1: D1Client,
  chunks: readonly Pick<EventChunk, "rows" | "bytes">[],
): D1PreparedStatement[] {
  const sql = jsonRowsInsertSql(INSERT);
  const filled = chunks.filter((chunk) => chunk.bytes > 2); // not "[]"
  // A chunk's rows without their brackets, joined by the packer; its size is stored with it.
  const inner = filled.map((chunk) => chunk.rows.slice(1, -1));
  const sizes = filled.map((chunk) => chunk.bytes - 2);
  return packJsonRows(inner, JSON_ROWS_BUDGET_BYTES, sizes).map((packed) => d1.prepare(sql).bind(packed.json));
}

/**
 * Multi-row idempotent inserts for `rows` (json_each form: one bound parameter, ≤ 90 KB each;
 * lib/d1.ts `jsonRowInserts`), within D1's per-statement limits.
 */
export function insertRuntimeEventStatements(d1: D1Client, rows: readonly RuntimeEventRow[]): D1PreparedStatement[] {
  return jsonRowInserts(
    d1,
    INSERT,
    rows.map((row) => [row.id, row.project_id, row.type, row.ts, row.data, row.received_at]),
  );
}

/** The legacy single-row insert: one statement, one round trip per event (`RUNTIME_EVENT_DO_MODE=off`). */
export function insertOneRuntimeEvent(d1: D1Client, row: RuntimeEventRow): D1PreparedStatement {
  return d1
    .prepare(`${INSERT.head} VALUES (?, ?, ?, ?, ?, ?) ${INSERT.tail}`)
    .bind(row.id, row.project_id, row.type, row.ts, row.data, row.received_at);
}

/**
 * Analytics Engine accepts at most 250 data points per invocation, so events are aggregated per
 * (project, type) before writing: one point per group with the count and the time range.
 */
export const AE_MAX_POINTS_PER_INVOCATION = 250;

export function aggregateEvents(events: readonly Pick<RuntimeEvent, "project_id" | "type" | "ts">[]): EventAggregate[] {
  const groups = new Map<string, EventAggregate>();
  for (const { project_id: project, type, ts } of events) {
    const key = `${project}\u0000${type}`;
    const group = groups.get(key);
    if (group) {
      group[2]++;
      group[3] = Math.min(group[3], ts);
      group[4] = Math.max(group[4], ts);
    } else {
      groups.set(key, [project, type, 1, ts, ts]);
    }
  }
  return [...groups.values()];
}

/** One data point per (project, type) aggregate, at most `AE_MAX_POINTS_PER_INVOCATION`. */
export function writeEventAggregates(dataset: AnalyticsEngineDataset, aggregates: readonly EventAggregate[]): number {
  let written = 0;
  for (const [project, type, count, minTs, maxTs] of aggregates) {
    if (written >= AE_MAX_POINTS_PER_INVOCATION) break;
    dataset.writeDataPoint({ indexes: [project], blobs: [project, type], doubles: [count, minTs, maxTs] });
    written++;
  }
  return written;
}
