-- runtime_events' secondary indexes, chosen by what they cost each insert.
--
-- An index on a key that arrives in random order costs a random b-tree page write per row; at
-- tens of thousands of events per second those page writes were most of D1's work (bench: 16k →
-- 30k events/s without them, bench/investigation.md section 6).
--   runtime_events_project_ts (project_id, ts): no query reads it. Per-project views come from
--     Analytics Engine (the shards' aggregates) and the do_usage rollups.
--   runtime_events_ts (ts): event time is the producer's clock, random within the last minute at
--     any real rate. Its one reader, daily retention, now goes by received_at: when Shipyard
--     stored the row, which only grows, so its index is appended to, not scattered.
-- The partial do_usage index (0008) stays: it holds only do_usage rows.
DROP INDEX IF EXISTS runtime_events_project_ts;
DROP INDEX IF EXISTS runtime_events_ts;
CREATE INDEX IF NOT EXISTS runtime_events_received_at ON runtime_events (received_at);
