import type { SqlMigration } from "./sql-schema.ts";

/**
 * CounterShard SQLite schema (append-only; see durable/sql-schema.ts). Times are epoch ms.
 * `pending` holds increments not yet in a flush; `inflight` the ones of the current flush, whose
 * id is in `flush` (one row at most) and is reused by every retry of that flush.
 */
export const COUNTER_SHARD_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "ledger, pending and in-flight increments, flush state",
    up: `
      CREATE TABLE seen (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX seen_by_time ON seen (seen_at);

      CREATE TABLE pending (
        id          TEXT PRIMARY KEY,
        scope       TEXT NOT NULL,
        key         TEXT NOT NULL,
        field       TEXT NOT NULL,
        delta       INTEGER NOT NULL,
        received_at INTEGER NOT NULL
      );
      CREATE INDEX pending_by_counter ON pending (scope, key);
      CREATE INDEX pending_by_time ON pending (received_at);

      CREATE TABLE inflight (
        id          TEXT PRIMARY KEY,
        scope       TEXT NOT NULL,
        key         TEXT NOT NULL,
        field       TEXT NOT NULL,
        delta       INTEGER NOT NULL,
        received_at INTEGER NOT NULL
      );
      CREATE INDEX inflight_by_counter ON inflight (scope, key);

      CREATE TABLE flush (flush_id TEXT NOT NULL, started_at INTEGER NOT NULL);

      CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `,
  },
];

export type HeldRow = {
  id: string;
  scope: "post" | "user";
  key: string;
  field: string;
  delta: number;
  received_at: number;
};
