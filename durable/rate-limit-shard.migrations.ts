import type { SqlMigration } from "./sql-schema.ts";

/**
 * RateLimitShard SQLite schema (append-only; see durable/sql-schema.ts).
 * Units: all times are epoch milliseconds. A "key" is one (identifier, route_class) pair.
 */
export const RATE_LIMIT_SHARD_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "sliding log of allowed requests, per-key counts",
    up: `
      -- One row per allowed request still inside its key's window (the exact sliding log).
      -- Refused requests are never logged, so a key holds at most \`limit\` rows.
      CREATE TABLE hits (
        identifier  TEXT NOT NULL,
        route_class TEXT NOT NULL,
        at          INTEGER NOT NULL
      );
      CREATE INDEX hits_by_key_time ON hits (identifier, route_class, at);

      -- The number of rows \`hits\` holds per key, kept in step with it in the same transaction,
      -- so a check reads one row instead of counting up to \`limit\` rows.
      CREATE TABLE keys (
        identifier  TEXT NOT NULL,
        route_class TEXT NOT NULL,
        used        INTEGER NOT NULL,
        idle_at     INTEGER NOT NULL,
        PRIMARY KEY (identifier, route_class)
      ) WITHOUT ROWID;
      CREATE INDEX keys_by_idle ON keys (idle_at);
    `,
  },
  {
    version: 2,
    name: "approximate sliding window: two fixed-window counters per key, synced in batches",
    up: `
      -- The exact log is replaced (docs/decisions/0003-rate-limiting.md): isolates count locally and
      -- send their counts in batches, so the shard keeps a count per key and fixed window. The
      -- log's rows are not converted: every key starts once on an empty window at this deploy.
      DROP TABLE hits;
      DROP TABLE keys;

      -- Requests allowed per key in one fixed window (window_start = a multiple of the window),
      -- summed over every isolate's syncs. Only the current and the previous window matter; older
      -- ones are deleted by the key's next sync, and idle keys by the alarm (idle_at).
      CREATE TABLE windows (
        identifier   TEXT NOT NULL,
        route_class  TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        count        INTEGER NOT NULL,
        idle_at      INTEGER NOT NULL,
        PRIMARY KEY (identifier, route_class, window_start)
      ) WITHOUT ROWID;
      CREATE INDEX windows_by_idle ON windows (idle_at);
    `,
  },
];

/** A row of `windows`. `idle_at`: epoch ms after which the window no longer counts (its end + one window). */
export type WindowRow = {
  identifier: string;
  route_class: string;
  window_start: number;
  count: number;
  idle_at: number;
};
