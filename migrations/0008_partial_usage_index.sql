-- The (type, ts) index of 0005 is maintained on every telemetry insert but read only for
-- do_usage events (the hourly rollup refresh): about 20 % of local telemetry throughput
-- (bench/investigation.md section 5). A partial index serves the same query and costs nothing
-- for other event types.
DROP INDEX IF EXISTS runtime_events_type_ts;
CREATE INDEX IF NOT EXISTS runtime_events_usage_ts ON runtime_events (ts) WHERE type = 'do_usage';
