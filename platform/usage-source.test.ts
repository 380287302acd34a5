import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { D1UsageSource, HOUR_MS } from "./usage-source.ts";

const DAY_MS = 24 * HOUR_MS;

const uid = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

async function usageEvent(project: string, ts: number, wallMs: number, outcome = "ok") {
  await env.DB.prepare(
    "INSERT INTO runtime_events (id, project_id, type, ts, data, received_at) VALUES (?, ?, 'do_usage', ?, ?, ?)",
  )
    .bind(
      crypto.randomUUID(),
      project,
      ts,
      JSON.stringify({ class: "Counter", handler: "fetch", outcome, wall_ms: wallMs }),
      ts,
    )
    .run();
}

describe("D1UsageSource (hourly rollups)", () => {
  it("refresh recomputes recent hours (idempotent), and the 24 h window sums whole hours", async ({ expect }) => {
    const project = uid("d1");
    const source = new D1UsageSource(env.DB);
    const now = Date.now();
    await usageEvent(project, now - 10_000, 40);
    await usageEvent(project, now - 20_000, 60, "error");
    await usageEvent(project, now - 2 * DAY_MS, 5_000); // outside the window
    await source.refresh(now);
    await source.refresh(now); // a repeated refresh changes nothing
    expect(await source.usageOf(project, DAY_MS, now)).toEqual({ wallMs: 100, invocations: 2 });
    const row = await env.DB.prepare("SELECT errors FROM do_usage_hourly WHERE project_id = ?").bind(project).first();
    expect(row).toEqual({ errors: 1 });
    await usageEvent(project, now - 5_000, 25);
    await source.refresh(now);
    expect((await source.usageByProject(DAY_MS, now)).get(project)).toEqual({ wallMs: 125, invocations: 3 });
  });
});

describe("D1UsageSource.currentUsageOf (GET do-usage)", () => {
  it("counts stored events before any refresh, and the same after one (rollups of older hours, events of recent ones)", async ({
    expect,
  }) => {
    const project = uid("live");
    const source = new D1UsageSource(env.DB, 6_000);
    const now = Date.now();
    const older = now - 5 * HOUR_MS; // outside the hours a refresh recomputes: read from its rollup
    await usageEvent(project, older, 1_000);
    await source.refresh(now, 6);
    await usageEvent(project, now - 10_000, 40);
    await usageEvent(project, now - 1_000, 2, "error");
    expect(await source.currentUsageOf(project, DAY_MS, now)).toEqual({
      wallMs: 1_042,
      invocations: 3,
      asOf: now,
      source: "runtime_events",
      lagMs: 6_000,
    });
    // The cycle's rollup does not lag behind, and the live figure does not count the recent hours twice.
    expect(await source.usageOf(project, DAY_MS, now)).toEqual({ wallMs: 1_000, invocations: 1 });
    await source.refresh(now);
    expect(await source.currentUsageOf(project, DAY_MS, now)).toMatchObject({ wallMs: 1_042, invocations: 3 });
    expect(await source.usageOf(project, DAY_MS, now)).toEqual({ wallMs: 1_042, invocations: 3 });
  });
});
