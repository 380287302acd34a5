import type { SqlMigration } from "./sql-schema.ts";

/** RedriveTask SQLite schema (append-only). Times are epoch ms. */
export const REDRIVE_TASK_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: "task, items and rounds",
    up: `
      CREATE TABLE task (
        id            TEXT PRIMARY KEY,
        spec          TEXT NOT NULL,
        status        TEXT NOT NULL,
        total         INTEGER NOT NULL,
        truncated     INTEGER NOT NULL,
        source_queues TEXT NOT NULL,
        failures      INTEGER NOT NULL DEFAULT 0,
        error         TEXT,
        cancelled_by  TEXT,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        finished_at   INTEGER
      );
      CREATE TABLE items (
        seq             INTEGER PRIMARY KEY,
        archive_id      TEXT NOT NULL UNIQUE,
        source_queue    TEXT NOT NULL,
        state           TEXT NOT NULL,
        attempts        INTEGER,
        last_failure_at INTEGER,
        target_queue    TEXT,
        error           TEXT
      );
      CREATE INDEX items_by_state ON items (state, seq);
      CREATE TABLE rounds (
        round       INTEGER PRIMARY KEY,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        sent        INTEGER NOT NULL,
        next_at     INTEGER
      );
    `,
  },
];

/** The task's one row. `spec` is the JSON of the RedriveSpec it was started with. */
export type TaskRow = {
  id: string;
  spec: string;
  status: string;
  total: number;
  truncated: number;
  source_queues: string;
  failures: number;
  error: string | null;
  cancelled_by: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
};

/**
 * One archived message the task moves. `pending` → `sent` (the queue send resolved; `attempts`,
 * `last_failure_at` hold the archive row's version as read, `target_queue` where it went) →
 * `moved` (its archive row settled in D1); or `skipped` (gone from the archive before its turn) or
 * `failed` (`error` says why).
 */
export type ItemState = "pending" | "sent" | "moved" | "skipped" | "failed";
export type ItemRow = {
  seq: number;
  archive_id: string;
  source_queue: string;
  state: ItemState;
  attempts: number | null;
  last_failure_at: number | null;
  target_queue: string | null;
  error: string | null;
};

/** One alarm round: when it ran, how many messages it sent, when the next was scheduled. */
export type RoundRow = { round: number; started_at: number; finished_at: number; sent: number; next_at: number | null };
