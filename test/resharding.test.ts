import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { telemetryShardName } from "../durable/runtime-event-shard.do.ts";
import { hashToShard } from "../lib/hash.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import { countRows, deliver, makeEvents, uid, waitForRows } from "./helpers.ts";

/** Flushes the telemetry shards that own `ids` under each shard count. */
async function flushOwners(ids: readonly string[], counts: readonly number[]): Promise<void> {
  const names = new Set(ids.flatMap((id) => counts.map((count) => telemetryShardName(hashToShard(id, count)))));
  for (const name of names) await env.RUNTIME_EVENT_SHARD.getByName(name).flushNow();
}

describe("row 13: SHARD_COUNT changed while traffic flows (telemetry)", () => {
  it("32 → 64 mid-stream with redelivered ids: every event stored once, nothing lost", async ({ expect }) => {
    const project = uid("reshard");
    const events = makeEvents(project, 300);
    const first = events.slice(0, 200);
    const second = events.slice(100); // 100 redelivered (some now on other shards) + 100 new
    const moved = first.slice(100).filter((event) => hashToShard(event.id, 32) !== hashToShard(event.id, 64));
    expect(moved.length).toBeGreaterThan(10);

    const before = await deliver(
      [{ id: uid("m"), timestamp: new Date(), attempts: 1, body: envelope("telemetry.events", { events: first }) }],
      { ...env, SHARD_COUNT: "32" },
    );
    expect(before.explicitAcks).toHaveLength(1);
    const after = await deliver(
      [{ id: uid("m"), timestamp: new Date(), attempts: 1, body: envelope("telemetry.events", { events: second }) }],
      { ...env, SHARD_COUNT: "64" },
    );
    expect(after.explicitAcks).toHaveLength(1);

    await flushOwners(
      events.map((event) => event.id),
      [32, 64],
    );
    expect(await waitForRows(project, 300)).toBe(300);
    expect(await countRows(project)).toBe(300);
  });
});
