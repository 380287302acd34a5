import { type RuntimeEventRow, chunkRows } from "../lib/runtime-events.d1.ts";
import type { SqlMigration } from "./sql-schema.ts";

/**
 * RuntimeEventShard SQLite schema (append-only; see durable/sql-schema.ts).
 * Units: all times are epoch milliseconds.
 */
export const RUNTIME_EVENT_SHARD_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "dedupe ledger, buffer, flush state",
    up: `
      CREATE TABLE seen (
        id      TEXT PRIMARY KEY,
        seen_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX seen_by_time ON seen (seen_at);

      CREATE TABLE buffer (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,
        project_id  TEXT NOT NULL,
        type        TEXT NOT NULL,
        ts          INTEGER NOT NULL,
        data        TEXT NOT NULL,
        received_at INTEGER NOT NULL
      );

      CREATE TABLE state (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      );
    `,
  },
  { version: 2, name: "buffer as chunks of events", up: bufferAsChunks },
];

/** A row of `chunks`: a run of buffered events, stored in the form the D1 insert binds. */
export type ChunkRow = {
  seq: number;
  /** JSON array of `[id, project_id, type, ts, data, received_at]` tuples (lib/runtime-events.d1.ts). */
  rows: string;
  n: number;
  bytes: number;
  /** JSON of the chunk's `EventAggregate[]`. */
  aggregates: string;
  received_at: number;
};

/**
 * Version 2: the buffer holds chunks (one row per ingest call and ≤ 90 KB of events) instead of a
 * row per event, which spared each event two b-tree inserts and two deletes in the shard, and its
 * re-encoding at flush time (bench/investigation.md, trial B). Rows buffered under version 1 move
 * into chunks, in order, each keeping its own `received_at`.
 */
function bufferAsChunks(sql: SqlStorage): void {
  sql.exec(`
    CREATE TABLE chunks (
      seq         INTEGER PRIMARY KEY AUTOINCREMENT,
      rows        TEXT NOT NULL,
      n           INTEGER NOT NULL,
      bytes       INTEGER NOT NULL,
      aggregates  TEXT NOT NULL,
      received_at INTEGER NOT NULL
    );
    -- The buffered events one per row, for on-call queries and tests.
    CREATE VIEW buffered_events AS
      SELECT chunks.seq AS seq, value->>0 AS id, value->>1 AS project_id, value->>2 AS type,
             value->>3 AS ts, value->>4 AS data, value->>5 AS received_at
      FROM chunks, json_each(chunks.rows);
  `);
  const old = sql
    .exec<RuntimeEventRow>("SELECT id, project_id, type, ts, data, received_at FROM buffer ORDER BY seq")
    .toArray();
  for (const row of old) {
    for (const chunk of chunkRows([row])) insertChunk(sql, chunk, row.received_at);
  }
  sql.exec("DROP TABLE buffer");
}

export function insertChunk(
  sql: SqlStorage,
  chunk: { rows: string; n: number; bytes: number; aggregates: unknown },
  receivedAt: number,
): void {
  sql.exec(
    "INSERT INTO chunks (rows, n, bytes, aggregates, received_at) VALUES (?, ?, ?, ?, ?)",
    chunk.rows,
    chunk.n,
    chunk.bytes,
    JSON.stringify(chunk.aggregates),
    receivedAt,
  );
}
