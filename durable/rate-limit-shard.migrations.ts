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
];

/** A row of `keys`. `idle_at`: epoch ms after which every logged hit of the key has left its window. */
export type KeyRow = {
  identifier: string;
  route_class: string;
  used: number;
  idle_at: number;
};
