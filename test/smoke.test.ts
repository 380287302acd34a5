import { env, exports } from "cloudflare:workers";
import { describe, it, vi } from "vitest";

describe("smoke", () => {
  it("health", async ({ expect }) => {
    const res = await exports.default.fetch("http://x/v1/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true });
  });
  it("event lands in D1", async ({ expect }) => {
    const res = await exports.default.fetch("http://x/v1/events", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer dev-ingest-key" },
      body: JSON.stringify({ events: [{ id: "e1", project_id: "p", type: "t", ts: 1, data: {} }] }),
    });
    expect(res.status).toBe(202);
    await vi.waitUntil(
      async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM runtime_events").first<{ n: number }>())?.n === 1,
      { timeout: 10000, interval: 100 },
    );
  });
});
