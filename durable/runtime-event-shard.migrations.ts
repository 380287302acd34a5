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
];

/** A row of `buffer`. */
export type BufferRow = {
  seq: number;
  id: string;
  project_id: string;
  type: string;
  ts: number;
  data: string;
  received_at: number;
};
