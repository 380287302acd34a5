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
  it("counts the rate limiter's work: one check per rate-limited request, with its SQLite rows", async ({ expect }) => {
    const before = await metrics();
    for (let i = 0; i < 3; i++) {
      const response = await exports.default.fetch(`${BASE}/v1/counters/post/metrics-${i}`, {
        headers: { authorization: "Bearer dev-ingest-key" },
      });
      expect(response.status).toBe(200);
    }
    const after = await metrics();
    // 3 counter reads + the metrics request itself (admin class) = 4 checks.
    expect(after.rate_limits.checks - before.rate_limits.checks).toBe(4);
    expect(after.rate_limits.rows_written).toBeGreaterThan(before.rate_limits.rows_written);
    expect(after.rate_limits.rows_read).toBeGreaterThan(before.rate_limits.rows_read);
  });
});
