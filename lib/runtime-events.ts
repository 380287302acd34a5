import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { type D1Client, jsonRowInserts } from "./d1.ts";

/** A runtime event as stored: the event plus when Shipyard first stored it. */
export interface RuntimeEventRow {
  id: string;
  project_id: string;
  type: string;
  ts: number;
  /** JSON text of the event's `data`. */
  data: string;
  received_at: number;
}

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

export function writeEventAggregates(dataset: AnalyticsEngineDataset, rows: readonly RuntimeEventRow[]): number {
  const groups = new Map<string, { project: string; type: string; count: number; minTs: number; maxTs: number }>();
  for (const row of rows) {
    const key = `${row.project_id}\u0000${row.type}`;
    const group = groups.get(key);
    if (group) {
      group.count++;
      group.minTs = Math.min(group.minTs, row.ts);
      group.maxTs = Math.max(group.maxTs, row.ts);
    } else {
      groups.set(key, { project: row.project_id, type: row.type, count: 1, minTs: row.ts, maxTs: row.ts });
    }
  }
  let written = 0;
  for (const group of groups.values()) {
    if (written >= AE_MAX_POINTS_PER_INVOCATION) break;
    dataset.writeDataPoint({
      indexes: [group.project],
      blobs: [group.project, group.type],
      doubles: [group.count, group.minTs, group.maxTs],
    });
    written++;
  }
  return written;
}
