-- Runtime telemetry, the system of record. One row per event id, however often it was sent.
CREATE TABLE IF NOT EXISTS runtime_events (
  id          TEXT PRIMARY KEY,        -- producer-chosen event id (1..128 chars)
  project_id  TEXT NOT NULL,
  type        TEXT NOT NULL,
  ts          INTEGER NOT NULL,        -- event time, epoch ms (producer clock)
  data        TEXT NOT NULL,           -- JSON object, <= 16 KiB
  received_at INTEGER NOT NULL         -- epoch ms the owning shard first stored it
);
CREATE INDEX IF NOT EXISTS runtime_events_project_ts ON runtime_events (project_id, ts);
CREATE INDEX IF NOT EXISTS runtime_events_ts ON runtime_events (ts);

-- Dead-letter archive: every message a consumer gave up on, with why.
CREATE TABLE IF NOT EXISTS dead_letters (
  id               TEXT PRIMARY KEY,   -- archive id (uuid)
  source_queue     TEXT NOT NULL,      -- queue the message was meant for
  message_id       TEXT NOT NULL,      -- queue message id (kept across redrives)
  envelope_type    TEXT,               -- envelope "type" when it could be read
  project_id       TEXT,               -- first project id found in the body, for filtering
  attempts         INTEGER NOT NULL,   -- delivery attempts, summed over redrives
  last_error       TEXT NOT NULL,
  first_failure_at INTEGER NOT NULL,   -- epoch ms
  last_failure_at  INTEGER NOT NULL,   -- epoch ms
  body             TEXT NOT NULL,      -- the message body as JSON
  archived_at      INTEGER NOT NULL,   -- epoch ms
  UNIQUE (source_queue, message_id)
);
CREATE INDEX IF NOT EXISTS dead_letters_queue_time ON dead_letters (source_queue, last_failure_at);
