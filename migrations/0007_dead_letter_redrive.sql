-- Why a message failed, recorded by its consumer before it retries the message (only on the failure
-- path: one multi-row upsert per failed batch). When the queue gives up after max_retries and the
-- raw body lands in `<queue>-dlq`, the dead-letter consumer reads the reason from here, archives it
-- and deletes the row in the same D1 batch. Rows of messages that later succeeded are pruned after
-- 14 days (the longest a queue keeps a message) by the next failure anywhere.
CREATE TABLE IF NOT EXISTS message_failures (
  source_queue     TEXT NOT NULL,      -- queue the message failed on
  message_key      TEXT NOT NULL,      -- hex SHA-256 of the body's JSON: the message's identity across redrives
  message_id       TEXT NOT NULL,      -- queue message id of the latest failed delivery
  attempts         INTEGER NOT NULL,   -- that message's delivery count at its latest failure (0: seeded by a redrive)
  prior_attempts   INTEGER NOT NULL DEFAULT 0, -- attempts counted before the latest redrive (from the archive)
  last_error       TEXT NOT NULL,
  first_failure_at INTEGER NOT NULL,   -- epoch ms
  last_failure_at  INTEGER NOT NULL,   -- epoch ms
  archive_id       TEXT,               -- archive row it was redriven from: re-archived under the same id
  PRIMARY KEY (source_queue, message_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS message_failures_time ON message_failures (last_failure_at);

-- The archive's identity becomes the body's content hash (it survives a redrive, where the queue
-- assigns a new message id); `message_id` is now the queue message id of the latest dead-lettering.
-- Rows archived before this migration keep a key of their own.
ALTER TABLE dead_letters ADD COLUMN message_key TEXT NOT NULL DEFAULT '';
UPDATE dead_letters SET message_key = 'legacy:' || message_id WHERE message_key = '';
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_key ON dead_letters (source_queue, message_key);
-- The admin list's order (newest archived first, archive id as tie-break) and its keyset cursor.
CREATE INDEX IF NOT EXISTS dead_letters_archived ON dead_letters (archived_at, id);
CREATE INDEX IF NOT EXISTS dead_letters_project ON dead_letters (project_id, archived_at);

-- One running redrive task per source queue. A task renews its lease every round; a lease that
-- ran out (a task that died without releasing) can be taken over.
CREATE TABLE IF NOT EXISTS redrive_locks (
  source_queue TEXT PRIMARY KEY,
  task_id      TEXT NOT NULL,          -- RedriveTask object name
  acquired_at  INTEGER NOT NULL,       -- epoch ms
  expires_at   INTEGER NOT NULL        -- epoch ms; renewed by every round
) WITHOUT ROWID;
