/**
 * Daily retention of `runtime_events` (cron `17 3 * * *`): rows stored more than
 * EVENT_RETENTION_DAYS ago are deleted in bounded chunks, through the received_at index.
 */
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { config } from "../lib/config.ts";
import { D1Client } from "../lib/d1.ts";
import { type RuntimeEventRow, insertRuntimeEventStatements } from "../lib/runtime-events.d1.ts";
import { countRows, uid } from "../test/helpers.ts";
import { PRUNE_CHUNK, PRUNE_SQL, pruneRuntimeEvents } from "./retention.job.ts";

const DAY_MS = 86_400_000;
const NOW = Date.UTC(2026, 10, 22, 3, 17);

function rows(projectId: string, count: number, fields: { ts: number; received_at: number }): RuntimeEventRow[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${projectId}-${i}`,
    project_id: projectId,
    type: "request",
    data: "{}",
    ...fields,
  }));
}

async function store(all: RuntimeEventRow[]): Promise<void> {
  const d1 = new D1Client(env.DB);
  await d1.batch(insertRuntimeEventStatements(d1, all));
}

describe("runtime_events retention", () => {
  it("deletes what was stored more than EVENT_RETENTION_DAYS ago, by received_at, in chunks", async ({ expect }) => {
    const days = config(env).EVENT_RETENTION_DAYS;
    const cutoff = NOW - days * DAY_MS;
    const old = uid("old");
    const fresh = uid("fresh");
    const skewed = uid("skewed");
    // More old rows than one chunk deletes, so the job must loop.
    await store(rows(old, PRUNE_CHUNK * 2 + 7, { ts: cutoff - 5_000, received_at: cutoff - 1 }));
    await store(rows(fresh, 20, { ts: NOW - 1_000, received_at: cutoff }));
    // A producer clock far behind: stored recently, so kept although its event time is old.
    await store(rows(skewed, 5, { ts: cutoff - 365 * DAY_MS, received_at: NOW - 60_000 }));

    expect(await pruneRuntimeEvents(env, NOW)).toBeGreaterThanOrEqual(PRUNE_CHUNK * 2 + 7);
    expect(await countRows(old)).toBe(0);
    expect(await countRows(fresh)).toBe(20);
    expect(await countRows(skewed)).toBe(5);
    // A second run finds nothing left to delete.
    expect(await pruneRuntimeEvents(env, NOW)).toBe(0);
  });

  it("finds old rows through the received_at index, not a scan of the table", async ({ expect }) => {
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${PRUNE_SQL}`).bind(0, PRUNE_CHUNK).all<{ detail: string }>();
    const details = plan.results.map((row) => row.detail).join("\n");
    expect(details).toContain("USING COVERING INDEX runtime_events_received_at (received_at<?)");
  });

  it("runtime_events keeps only the indexes something reads", async ({ expect }) => {
    const indexes = await env.DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runtime_events' AND sql IS NOT NULL ORDER BY name",
    ).all<{ name: string }>();
    // received_at: retention (above); usage_ts: the do_usage rollup (partial, do_usage rows only).
    expect(indexes.results.map((row) => row.name)).toEqual(["runtime_events_received_at", "runtime_events_usage_ts"]);
  });
});
