-- Durable Object wall time per project per hour: the local UsageSource (production asks
-- Analytics Engine instead). Recomputed, never incremented, from runtime_events of type do_usage,
-- so a refresh can run any number of times (exactly-once by construction).
CREATE TABLE IF NOT EXISTS do_usage_hourly (
  project_id  TEXT NOT NULL,
  hour        INTEGER NOT NULL,           -- epoch ms of the hour's start (UTC)
  wall_ms     INTEGER NOT NULL,           -- summed wall time of every Durable Object invocation
  invocations INTEGER NOT NULL,
  errors      INTEGER NOT NULL,
  refreshed_at INTEGER NOT NULL,          -- epoch ms
  PRIMARY KEY (project_id, hour)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS do_usage_hourly_hour ON do_usage_hourly (hour);

-- Finding do_usage events of recent hours without scanning other telemetry.
CREATE INDEX IF NOT EXISTS runtime_events_type_ts ON runtime_events (type, ts);
