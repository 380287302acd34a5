/**
 * Metering nobody outside can forge (issue 13, docs/reliability-tenants.md rows T2.*): `do_usage`
 * is the platform's own event type, refused by the public ingest API; and a `do_usage` event that
 * reaches storage some other way (the on-call queue tool, a redrive) with a negative wall time or
 * a far-future timestamp does not move anyone's usage.
 */
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { QUEUES } from "../lib/queues.ts";
import { D1UsageSource, HOUR_MS } from "../platform/usage-source.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { ADMIN, BASE_URL } from "./deploy-helpers.ts";
import { countRows, postEvents, readError, spyOnTelemetrySends, uid, waitForRows } from "./helpers.ts";

const DAY_MS = 24 * HOUR_MS;
const YEAR_2100 = Date.UTC(2100, 0, 1);

function usageEvent(project: string, wallMs: number, ts: number = Date.now()): RuntimeEvent {
  return {
    id: uid("usage"),
    project_id: project,
    type: "do_usage",
    ts,
    data: { class: "Counter", handler: "fetch", outcome: "ok", wall_ms: wallMs },
  };
}

async function usageOf(project: string): Promise<{ current: number; rolledUp: number }> {
  const source = new D1UsageSource(env.DB);
  const now = Date.now();
  const current = await source.currentUsageOf(project, DAY_MS, now);
  await source.refresh(now);
  const rolledUp = await source.usageOf(project, DAY_MS, now);
  return { current: current.wallMs, rolledUp: rolledUp.wallMs };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("do_usage cannot be forged", () => {
  it("T2.1 POST /v1/events with do_usage (huge for another project, negative, year 2100) → 400 reserved_event_type, nothing enqueued", async ({
    expect,
  }) => {
    const victim = uid("victim");
    const attacker = uid("attacker");
    const sends = spyOnTelemetrySends();
    const forgeries = [
      [usageEvent(victim, 10 * DAY_MS)],
      [usageEvent(attacker, -10 * DAY_MS)],
      [usageEvent(victim, 60_000, YEAR_2100)],
      // One forgery hidden among ordinary events refuses the whole request.
      [
        { id: uid("ok"), project_id: attacker, type: "request", ts: Date.now(), data: { status: 200 } },
        usageEvent(victim, 10 * DAY_MS),
      ],
    ];
    for (const events of forgeries) {
      const response = await postEvents({ events });
      expect(response.status).toBe(400);
      const error = await readError(response);
      expect(error.error.code).toBe("reserved_event_type");
      expect(error.error.message).toContain("do_usage");
    }
    expect(sends.send).not.toHaveBeenCalled();
    expect(sends.sendBatch).not.toHaveBeenCalled();
    expect(await countRows(victim)).toBe(0);
    expect(await usageOf(victim)).toEqual({ current: 0, rolledUp: 0 });
    expect(await usageOf(attacker)).toEqual({ current: 0, rolledUp: 0 });
  });

  it("T2.2 do_usage reaching storage another way: negative wall time counts 0, a year-2100 ts not at all", async ({
    expect,
  }) => {
    const project = uid("stored");
    const events = [
      usageEvent(project, 40),
      usageEvent(project, -10 * DAY_MS),
      usageEvent(project, 10 * DAY_MS, YEAR_2100),
    ];
    // The on-call repair tool puts a raw envelope on the queue, unvalidated: the platform's own path.
    const response = await exports.default.fetch(`${BASE_URL}/v1/admin/queues/${QUEUES.telemetry.name}/send`, {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ body: envelope("telemetry.events", { events }) }),
    });
    expect(response.status).toBe(202);
    expect(await waitForRows(project, events.length)).toBe(events.length);
    expect(await usageOf(project)).toEqual({ current: 40, rolledUp: 40 });
  });
});
