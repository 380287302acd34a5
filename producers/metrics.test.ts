import { exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { MetricsSchema } from "../schemas/http.schema.ts";

const BASE = "http://shipyard.test";
const ADMIN = { authorization: "Bearer dev-admin-token" };

async function metrics() {
  const response = await exports.default.fetch(`${BASE}/v1/admin/metrics`, { headers: ADMIN });
  return MetricsSchema.parse(await response.json());
}

describe("GET /v1/admin/metrics", () => {
  it("counts the rate limiter's work: one decision per rate-limited request, batched into fewer syncs", async ({
    expect,
  }) => {
    const before = await metrics();
    for (let i = 0; i < 3; i++) {
      const response = await exports.default.fetch(`${BASE}/v1/counters/post/metrics-${i}`, {
        headers: { authorization: "Bearer dev-ingest-key" },
      });
      expect(response.status).toBe(200);
    }
    const after = await metrics();
    // 3 counter reads + the metrics request itself (admin class) = 4 decisions, made in this
    // isolate from its cached counts: at most one sync each (the first of a key waits for one,
    // the rest go out in batches), and the shards' SQLite work is per sync, not per request.
    expect(after.rate_limits.decisions - before.rate_limits.decisions).toBe(4);
    const syncs = after.rate_limits.syncs - before.rate_limits.syncs;
    expect(syncs).toBeLessThanOrEqual(4);
  });
});
