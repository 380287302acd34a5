import type { SqlMigration } from "./sql-schema.ts";

/** AuditLog SQLite schema (append-only). Times are epoch ms (UTC). */
export const AUDIT_LOG_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "entries of one UTC day",
    // A rowid table rather than WITHOUT ROWID: `details` can be kilobytes of JSON, and wide rows
    // in a clustered primary-key index make every page split expensive.
    up: `
      CREATE TABLE entries (
        id          TEXT NOT NULL UNIQUE,
        at          INTEGER NOT NULL,
        type        TEXT NOT NULL,
        actor       TEXT NOT NULL,
        project_id  TEXT,
        details     TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
      );
      CREATE INDEX entries_by_time ON entries (at, id);
      CREATE INDEX entries_by_type ON entries (type, at, id);
    `,
  },
];

/** An audit entry's columns, shared by `entries` here and D1 `audit_log` (the outbox). */
export type AuditRow = {
  id: string;
  at: number;
  type: string;
  actor: string;
  project_id: string | null;
  details: string;
};

/** One row of `entries`. */
export type EntryRow = AuditRow & { recorded_at: number };
