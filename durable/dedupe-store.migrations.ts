import type { SqlMigration } from "./sql-schema.ts";

/** DedupeStore SQLite schema (append-only). Times are epoch ms. */
export const DEDUPE_STORE_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "entries with expiry",
    up: `
      CREATE TABLE entries (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX entries_by_expiry ON entries (expires_at);
    `,
  },
];

export type EntryRow = { key: string; value: string; created_at: number; expires_at: number };
