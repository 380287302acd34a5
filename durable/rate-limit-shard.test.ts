import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import type { RateLimitShard, SyncKey, WindowCounts } from "./rate-limit-shard.do.ts";

/** A fresh, named shard per test: no state leaks between tests or runs. */
function freshShard() {
  return env.RATE_LIMIT_SHARD.getByName(`rl-test-${crypto.randomUUID()}`);
}

type Stub = ReturnType<typeof freshShard>;

/** A window start: T0 is a multiple of every window length used here. */
const T0 = 1_800_000_000_000;
const W = 60_000;

async function sync(shard: Stub, keys: SyncKey[]): Promise<WindowCounts[]> {
  const result = await shard.sync({ keys });
  if (!result.ok) throw new Error(`sync failed: ${result.error.reason}: ${result.error.message}`);
  return result.value;
}

/** One key of an isolate's sync: `counts` requests allowed per window start since its last sync. */
function key(identifier: string, current: number, counts: Record<number, number> = {}, windowS = 60): SyncKey {
  return {
    identifier,
    routeClass: "ingest",
    windowS,
    current,
    deltas: Object.entries(counts).map(([start, count]) => ({ start: Number(start), count })),
  };
}

async function windowRows(shard: Stub): Promise<{ identifier: string; window_start: number; count: number }[]> {
  return runInDurableObject(shard, (_instance: RateLimitShard, state) =>
    state.storage.sql
      .exec<{ identifier: string; window_start: number; count: number }>(
        "SELECT identifier, window_start, count FROM windows ORDER BY identifier, window_start",
      )
      .toArray(),
  );
}

describe("RateLimitShard (window counts, synced in batches)", () => {
  it("sums every isolate's counts and answers the totals of the current and previous windows", async ({ expect }) => {
    const shard = freshShard();
    // Isolate A allowed 3 in the window before T0 and 2 in T0's; isolate B 4 in T0's.
    expect(await sync(shard, [key("key:sum", T0, { [T0 - W]: 3, [T0]: 2 })])).toEqual([{ current: 2, previous: 3 }]);
    expect(await sync(shard, [key("key:sum", T0, { [T0]: 4 })])).toEqual([{ current: 6, previous: 3 }]);
    // A sync with nothing new only reads.
    expect(await sync(shard, [key("key:sum", T0)])).toEqual([{ current: 6, previous: 3 }]);
    // One window later, T0's window is the previous one.
    expect(await sync(shard, [key("key:sum", T0 + W, { [T0 + W]: 1 })])).toEqual([{ current: 1, previous: 6 }]);
  });

  it("drops counts for windows that no longer matter, and deletes windows older than the previous one", async ({
    expect,
  }) => {
    const shard = freshShard();
    await sync(shard, [key("key:old", T0, { [T0 - W]: 5, [T0]: 1 })]);
    // A late delta for a window two back changes nothing; the window before the previous is deleted.
    expect(await sync(shard, [key("key:old", T0 + 2 * W, { [T0]: 7, [T0 + 2 * W]: 1 })])).toEqual([
      { current: 1, previous: 0 },
    ]);
    expect(await windowRows(shard)).toEqual([{ identifier: "key:old", window_start: T0 + 2 * W, count: 1 }]);
  });

  it("carries many keys in one call, kept apart by identifier and route class", async ({ expect }) => {
    const shard = freshShard();
    const counts = await sync(shard, [
      key("key:a", T0, { [T0]: 1 }),
      { ...key("key:a", T0, { [T0]: 2 }), routeClass: "admin" },
      key("key:b", T0, { [T0]: 3 }),
    ]);
    expect(counts).toEqual([
      { current: 1, previous: 0 },
      { current: 2, previous: 0 },
      { current: 3, previous: 0 },
    ]);
    const cost = await shard.cost();
    expect(cost).toMatchObject({ calls: 1, keys: 3 });
  });

  it("peek estimates the sliding window and counts nothing; reset forgets every class of the identifier", async ({
    expect,
  }) => {
    const shard = freshShard();
    await sync(shard, [key("key:peek", T0, { [T0 - W]: 10, [T0]: 3 })]);
    await sync(shard, [{ ...key("key:peek", T0, { [T0]: 1 }), routeClass: "admin" }]);
    const rule = { limit: 20, windowS: 60 };
    const rules = { ingest: rule, webhook: rule, admin: rule };
    // A quarter into T0's window: 10 × 0.75 + 3 = 10.5 → 11 used, 9 remaining.
    const peeked = await shard.peek({ identifier: "key:peek", rules, now: T0 + W / 4 });
    expect(await shard.peek({ identifier: "key:peek", rules, now: T0 + W / 4 })).toEqual(peeked);
    expect(peeked).toEqual({
      ok: true,
      value: {
        ingest: { ...rule, current: 3, previous: 10, used: 11, remaining: 9, resetS: 45 },
        webhook: { ...rule, current: 0, previous: 0, used: 0, remaining: 20, resetS: 0 },
        admin: { ...rule, current: 1, previous: 0, used: 1, remaining: 19, resetS: 45 },
      },
    });
    expect(await shard.reset("key:peek")).toEqual({ ok: true, value: { clearedHits: 14 } });
    expect(await windowRows(shard)).toEqual([]);
  });

  it("refuses malformed input with reason invalid_request instead of throwing", async ({ expect }) => {
    const shard = freshShard();
    expect(await shard.sync({ keys: [] })).toMatchObject({ ok: false, error: { reason: "invalid_request" } });
    // `current` must be a window start.
    expect(await shard.sync({ keys: [key("key:bad", T0 + 1)] })).toMatchObject({
      ok: false,
      error: { reason: "invalid_request" },
    });
    expect(await shard.sync({ keys: [key("", T0)] })).toMatchObject({
      ok: false,
      error: { reason: "invalid_request" },
    });
  });

  it("keeps its windows across an eviction (schema applied once, data in SQLite)", async ({ expect }) => {
    const shard = freshShard();
    await sync(shard, [key("key:evict", T0, { [T0]: 2 })]);
    await evictDurableObject(shard);
    expect(await sync(shard, [key("key:evict", T0, { [T0]: 1 })])).toEqual([{ current: 3, previous: 0 }]);
    expect((await shard.cost()).schemaVersion).toBe(2);
  });

  it("sweeps windows that no longer count with its alarm", async ({ expect }) => {
    const shard = freshShard();
    const now = Date.now();
    const start = now - (now % W);
    // One key quiet for hours (its windows ended long ago), one active now.
    await sync(shard, [key("key:quiet", start - 180 * W, { [start - 180 * W]: 3 })]);
    await sync(shard, [key("key:active", start, { [start]: 1 })]);
    expect(await windowRows(shard)).toHaveLength(2);
    expect(await runDurableObjectAlarm(shard)).toBe(true);
    expect(await windowRows(shard)).toEqual([{ identifier: "key:active", window_start: start, count: 1 }]);
  });

  it("costs a handful of rows per key and sync, however many requests the sync carries", async ({ expect }) => {
    const shard = freshShard();
    await sync(shard, [key("key:cost", T0, { [T0]: 1 })]);
    const before = await shard.cost();
    await sync(shard, [key("key:cost", T0, { [T0]: 1 })]);
    const one = await shard.cost();
    await sync(shard, [key("key:cost", T0, { [T0]: 5_000 })]);
    const many = await shard.cost();
    const written = (a: typeof before, b: typeof before) => b.rowsWritten - a.rowsWritten;
    expect(written(one, many)).toBe(written(before, one));
    expect(written(before, one)).toBeLessThanOrEqual(3);
  });
});
