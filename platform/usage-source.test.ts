import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { z } from "zod";
import {
  ANALYTICS_ENGINE_SCRIPT,
  type ControlCommand,
  FAKE_CF_API_TOKEN,
} from "../test/fake-cloudflare-api/protocol.ts";
import { AnalyticsEngineUsageSource, D1UsageSource, HOUR_MS } from "./usage-source.ts";

const DAY_MS = 24 * HOUR_MS;

async function control(command: ControlCommand): Promise<void> {
  const response = await fetch(new URL("/__control", env.CF_API_BASE_URL), {
    method: "POST",
    body: JSON.stringify(command),
  });
  if (!response.ok) throw new Error(`fake control refused: ${await response.text()}`);
}

async function aeRequests(): Promise<{ status: number }[]> {
  const response = await fetch(new URL(`/__control/requests?script=${ANALYTICS_ENGINE_SCRIPT}`, env.CF_API_BASE_URL));
  return z.array(z.object({ status: z.number() })).parse(await response.json());
}

function source(token = FAKE_CF_API_TOKEN) {
  return new AnalyticsEngineUsageSource({
    accountId: "acct",
    apiToken: token,
    baseUrl: env.CF_API_BASE_URL,
    attempts: 3,
  });
}

const uid = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

describe("AnalyticsEngineUsageSource (real client, local SQL API)", () => {
  it("sums wall time per project over the window, weighted by the sample interval", async ({ expect }) => {
    const a = uid("ae-a");
    const b = uid("ae-b");
    const now = Date.now();
    await control({
      action: "ae_points",
      points: [
        { project: a, className: "Counter", handler: "fetch", wallMs: 100 },
        { project: a, className: "Counter", handler: "rpc:increment", wallMs: 50, sampleInterval: 4 },
        { project: b, className: "Room", handler: "alarm", wallMs: 7 },
        // Outside the 24 h window:
        { project: a, className: "Counter", handler: "fetch", wallMs: 1_000_000, timestamp: now - DAY_MS - HOUR_MS },
      ],
    });
    const usage = await source().usageByProject(DAY_MS, now);
    expect(usage.get(a)).toEqual({ wallMs: 300, invocations: 5 });
    expect(usage.get(b)).toEqual({ wallMs: 7, invocations: 1 });
    expect(await source().usageOf(a, DAY_MS, now)).toEqual({ wallMs: 300, invocations: 5 });
    expect(await source().usageOf(uid("none"), DAY_MS, now)).toEqual({ wallMs: 0, invocations: 0 });
    expect(await source().currentUsageOf(a, DAY_MS, now)).toEqual({
      wallMs: 300,
      invocations: 5,
      asOf: now,
      source: "analytics_engine",
      lagMs: 60_000,
    });
  });

  it("retries 429 and 5xx, then answers; gives up with a clear error after bounded attempts", async ({ expect }) => {
    const before = (await aeRequests()).length;
    await control({ action: "fail", status: 503, count: 2, script: ANALYTICS_ENGINE_SCRIPT });
    await expect(source().usageByProject(DAY_MS, Date.now())).resolves.toBeInstanceOf(Map);
    expect((await aeRequests()).length - before).toBe(3);

    // As many failures as the client makes attempts (3): no reset needed, which would also wipe the
    // state of other test files sharing this fake.
    await control({ action: "fail", status: 500, count: 3, script: ANALYTICS_ENGINE_SCRIPT });
    await expect(source().usageByProject(DAY_MS, Date.now())).rejects.toThrow(
      /Analytics Engine SQL query failed: HTTP 500/,
    );
  });

  it("a bad token is refused at once, with the API's message", async ({ expect }) => {
    await expect(source("wrong").usageByProject(DAY_MS, Date.now())).rejects.toThrow(/HTTP 401: Authentication error/);
  });

  it("refuses an unsafe project id before building SQL", async ({ expect }) => {
    await expect(source().usageOf("x' OR 1=1 --", DAY_MS, Date.now())).rejects.toThrow(/invalid project id/);
  });
});

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
