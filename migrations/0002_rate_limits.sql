-- Rate limiting fallback: fixed-window counters used only while a RateLimitShard is unreachable.
-- The shards (sliding log, Durable Object SQLite) are the normal path; see
-- docs/decisions/0003-rate-limiting.md.
CREATE TABLE IF NOT EXISTS rate_limit_windows (
  identifier   TEXT NOT NULL,          -- "key:<16 hex>", "admin:<16 hex>" or "ip:<address>"
  route_class  TEXT NOT NULL,          -- "ingest" | "webhook" | "admin"
  window_start INTEGER NOT NULL,       -- epoch ms, a multiple of the window length
  count        INTEGER NOT NULL,       -- requests seen in this window, allowed and refused
  PRIMARY KEY (identifier, route_class, window_start)
) WITHOUT ROWID;
