import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import type { RouteClass } from "../schemas/rate-limit.schema.ts";
import type { CheckRequest, RateLimitDecision, RateLimitShard } from "./rate-limit-shard.do.ts";

/** A fresh, named shard per test: no state leaks between tests or runs. */
function freshShard() {
  return env.RATE_LIMIT_SHARD.getByName(`rl-test-${crypto.randomUUID()}`);
}

type Stub = ReturnType<typeof freshShard>;

const T0 = 1_800_000_000_000;

async function check(shard: Stub, request: CheckRequest): Promise<RateLimitDecision> {
  const result = await shard.check(request);
  if (!result.ok) throw new Error(`check failed: ${result.error.reason}: ${result.error.message}`);
  return result.value;
}

/** `count` checks of `identifier` at `at(i)`; returns how many were allowed. */
async function burst(
  shard: Stub,
  identifier: string,
  count: number,
  rule: { limit: number; windowS: number },
  at: (i: number) => number,
  routeClass: RouteClass = "ingest",
): Promise<RateLimitDecision[]> {
  const decisions: RateLimitDecision[] = [];
  for (let i = 0; i < count; i++) {
    decisions.push(await check(shard, { identifier, routeClass, ...rule, now: at(i) }));
  }
  return decisions;
}

/** Rows per check at 2× the limit in steady state: half allowed (logged, later pruned), half refused. */
async function rowsPerCheck(limit: number): Promise<{ read: number; written: number }> {
  const shard = freshShard();
  const rule = { limit, windowS: 1 };
  const at = (i: number) => T0 + Math.floor((i * 1_000) / (2 * limit));
  // Two windows to reach the steady state, then two measured windows.
  await burst(shard, "key:cost", 4 * limit, rule, at);
  const before = await shard.cost();
  await burst(shard, "key:cost", 4 * limit, rule, (i) => at(4 * limit + i));
  const after = await shard.cost();
  const calls = after.calls - before.calls;
  return {
    read: (after.rowsRead - before.rowsRead) / calls,
    written: (after.rowsWritten - before.rowsWritten) / calls,
  };
}

function every200Ms(i: number): number {
  return T0 + i * 200;
}

async function tableCounts(shard: Stub): Promise<{ hits: number; keys: number }> {
  return runInDurableObject(shard, (_instance: RateLimitShard, state) => ({
    hits: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM hits").one().n,
    keys: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM keys").one().n,
  }));
}

describe("RateLimitShard (exact sliding log)", () => {
  it("allows exactly the limit at 5× the limit: 50 requests, limit 10 per 60 s → 10 allowed", async ({ expect }) => {
    const shard = freshShard();
    const decisions = await burst(shard, "key:accuracy", 50, { limit: 10, windowS: 60 }, (i) => T0 + i * 100);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    // The first ten pass, then every one is refused: a refusal never lets a later request through.
    expect(decisions.slice(0, 10).every((d) => d.allowed)).toBe(true);
    expect(decisions.slice(10).every((d) => !d.allowed)).toBe(true);
    expect(decisions.map((d) => d.remaining).slice(0, 11)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]);
    // The oldest allowed request (T0) leaves the window at T0 + 60 s; the last refusal is at T0 + 4.9 s.
    expect(decisions.at(-1)).toEqual({ allowed: false, limit: 10, remaining: 0, resetS: 56, retryAfterS: 56 });
  });

  it("keeps exactly the limit in every window over many windows of traffic at 5× the limit", async ({ expect }) => {
    const shard = freshShard();
    const rule = { limit: 10, windowS: 10 };
    // 5 requests a second for 60 s = 50 per 10 s window, 5× the limit.
    const decisions = await burst(shard, "key:steady", 300, rule, every200Ms);
    const allowedAt = decisions.flatMap((d, i) => (d.allowed ? [every200Ms(i)] : []));
    for (let start = T0; start < T0 + 60_000; start += 10_000) {
      const inWindow = allowedAt.filter((t) => t >= start && t < start + 10_000);
      expect(inWindow, `window starting at +${start - T0} ms`).toHaveLength(10);
    }
    // And in every sliding window, not only the aligned ones, never more than the limit.
    for (const t of allowedAt) {
      expect(allowedAt.filter((u) => u > t - 10_000 && u <= t).length).toBeLessThanOrEqual(10);
    }
  });

  it("frees a slot exactly when the oldest request leaves the window", async ({ expect }) => {
    const shard = freshShard();
    const rule = { limit: 3, windowS: 60 };
    await burst(shard, "key:slide", 3, rule, (i) => T0 + i * 1_000);
    const justBefore = await check(shard, { identifier: "key:slide", routeClass: "ingest", ...rule, now: T0 + 59_999 });
    expect(justBefore).toMatchObject({ allowed: false, retryAfterS: 1 });
    const atExpiry = await check(shard, { identifier: "key:slide", routeClass: "ingest", ...rule, now: T0 + 60_000 });
    expect(atExpiry).toMatchObject({ allowed: true, remaining: 0, resetS: 1 });
    const next = await check(shard, { identifier: "key:slide", routeClass: "ingest", ...rule, now: T0 + 60_500 });
    expect(next).toMatchObject({ allowed: false, retryAfterS: 1 });
  });

  it("does not log refused requests, so hammering does not push the reset further away", async ({ expect }) => {
    const shard = freshShard();
    const rule = { limit: 2, windowS: 30 };
    await burst(shard, "key:hammer", 2, rule, () => T0);
    const refused = await burst(shard, "key:hammer", 200, rule, (i) => T0 + 10 + i * 100);
    expect(refused.every((d) => !d.allowed)).toBe(true);
    expect(await tableCounts(shard)).toEqual({ hits: 2, keys: 1 });
    const after = await check(shard, { identifier: "key:hammer", routeClass: "ingest", ...rule, now: T0 + 30_000 });
    expect(after.allowed).toBe(true);
  });

  it("keeps route classes and identifiers apart", async ({ expect }) => {
    const shard = freshShard();
    const rule = { limit: 1, windowS: 60 };
    expect((await check(shard, { identifier: "key:a", routeClass: "ingest", ...rule, now: T0 })).allowed).toBe(true);
    expect((await check(shard, { identifier: "key:a", routeClass: "admin", ...rule, now: T0 })).allowed).toBe(true);
    expect((await check(shard, { identifier: "key:b", routeClass: "ingest", ...rule, now: T0 })).allowed).toBe(true);
    expect((await check(shard, { identifier: "key:a", routeClass: "ingest", ...rule, now: T0 })).allowed).toBe(false);
  });

  it("honours a lowered limit: retry waits until enough requests have left the window", async ({ expect }) => {
    const shard = freshShard();
    await burst(shard, "key:lowered", 5, { limit: 5, windowS: 60 }, (i) => T0 + i * 1_000);
    // Limit lowered to 2: 5 counted, so the 4th oldest (at T0 + 3 s) must leave: at T0 + 63 s.
    const refused = await check(shard, {
      identifier: "key:lowered",
      routeClass: "ingest",
      limit: 2,
      windowS: 60,
      now: T0 + 10_000,
    });
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterS: 53 });
  });

  it("peek counts nothing and reset forgets every class of the identifier", async ({ expect }) => {
    const shard = freshShard();
    const rule = { limit: 5, windowS: 60 };
    await burst(shard, "key:peek", 3, rule, (i) => T0 + i, "ingest");
    await burst(shard, "key:peek", 1, rule, () => T0, "admin");
    const rules = { ingest: rule, webhook: rule, admin: rule };
    const peeked = await shard.peek({ identifier: "key:peek", rules, now: T0 + 1_000 });
    const again = await shard.peek({ identifier: "key:peek", rules, now: T0 + 1_000 });
    expect(peeked).toEqual(again);
    expect(peeked).toEqual({
      ok: true,
      value: {
        ingest: { limit: 5, windowS: 60, used: 3, remaining: 2, resetS: 59 },
        webhook: { limit: 5, windowS: 60, used: 0, remaining: 5, resetS: 0 },
        admin: { limit: 5, windowS: 60, used: 1, remaining: 4, resetS: 59 },
      },
    });
    expect(await shard.reset("key:peek")).toEqual({ ok: true, value: { clearedHits: 4 } });
    expect(await tableCounts(shard)).toEqual({ hits: 0, keys: 0 });
    const fresh = await check(shard, { identifier: "key:peek", routeClass: "ingest", ...rule, now: T0 + 2_000 });
    expect(fresh.remaining).toBe(4);
  });

  it("refuses malformed input with reason invalid_request instead of throwing", async ({ expect }) => {
    const shard = freshShard();
    const result = await shard.check({ identifier: "", routeClass: "ingest", limit: 0, windowS: 60 });
    expect(result).toMatchObject({ ok: false, error: { reason: "invalid_request" } });
  });

  it("keeps its windows across an eviction (schema applied once, data in SQLite)", async ({ expect }) => {
    const shard = freshShard();
    const rule = { limit: 3, windowS: 60 };
    await burst(shard, "key:evict", 2, rule, () => T0);
    await evictDurableObject(shard);
    const decision = await check(shard, { identifier: "key:evict", routeClass: "ingest", ...rule, now: T0 + 1 });
    expect(decision).toMatchObject({ allowed: true, remaining: 0 });
    expect((await shard.cost()).schemaVersion).toBe(1);
  });

  it("sweeps keys that went quiet with its alarm", async ({ expect }) => {
    const shard = freshShard();
    const now = Date.now();
    // One key idle for hours (its window ended long ago), one still active.
    await burst(shard, "key:quiet", 3, { limit: 5, windowS: 60 }, () => now - 3 * 3_600_000);
    await burst(shard, "key:active", 1, { limit: 5, windowS: 3_600 }, () => now);
    expect(await tableCounts(shard)).toEqual({ hits: 4, keys: 2 });
    expect(await runDurableObjectAlarm(shard)).toBe(true);
    expect(await tableCounts(shard)).toEqual({ hits: 1, keys: 1 });
  });

  it("costs a handful of rows per check whatever the limit (bench hook: cost())", async ({ expect }) => {
    const small = await rowsPerCheck(10);
    const large = await rowsPerCheck(200);
    // Measured: 6 rows read and 3 written per check at both limits (docs/decisions/0003-rate-limiting.md).
    expect(small.read).toBeLessThanOrEqual(10);
    expect(small.written).toBeLessThanOrEqual(5);
    expect(Math.abs(large.read - small.read)).toBeLessThanOrEqual(1);
    expect(Math.abs(large.written - small.written)).toBeLessThanOrEqual(1);
  });
});
