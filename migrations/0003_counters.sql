-- Counters, the system of record: one row per (scope, key, field); value never below 0.
CREATE TABLE IF NOT EXISTS counters (
  scope      TEXT NOT NULL,            -- "post" | "user"
  key        TEXT NOT NULL,
  field      TEXT NOT NULL,
  value      INTEGER NOT NULL,         -- >= 0
  updated_at INTEGER NOT NULL,         -- epoch ms of the last flush that changed it
  PRIMARY KEY (scope, key, field)
) WITHOUT ROWID;

-- Every increment ever applied, by its producer id: the exactly-once guarantee across shards,
-- shard-count changes and client retries. Pruned after COUNTER_LEDGER_DAYS.
CREATE TABLE IF NOT EXISTS counter_increments (
  id         TEXT PRIMARY KEY,         -- producer-chosen increment id
  flush_id   TEXT NOT NULL,            -- the flush that applied it
  scope      TEXT NOT NULL,
  key        TEXT NOT NULL,
  field      TEXT NOT NULL,
  delta      INTEGER NOT NULL,
  applied_at INTEGER NOT NULL          -- epoch ms
);
CREATE INDEX IF NOT EXISTS counter_increments_flush ON counter_increments (flush_id);
CREATE INDEX IF NOT EXISTS counter_increments_applied ON counter_increments (applied_at);

-- Flush ledger: written first in each flush's D1 batch, so a repeated flush fails on this
-- primary key and its whole batch rolls back instead of adding the deltas again.
CREATE TABLE IF NOT EXISTS counter_flushes (
  flush_id   TEXT PRIMARY KEY,
  source     TEXT NOT NULL,            -- shard name, or "direct"
  increments INTEGER NOT NULL,
  flushed_at INTEGER NOT NULL          -- epoch ms
);
CREATE INDEX IF NOT EXISTS counter_flushes_time ON counter_flushes (flushed_at);
