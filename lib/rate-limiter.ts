import { isOverloaded } from "./durable-object-errors.ts";
import type { RateLimitDecision, RateLimitError, RateLimitShard } from "../durable/rate-limit-shard.do.ts";
import { type RateLimit, config } from "./config.ts";
import { D1Client } from "./d1.ts";
import { fault } from "./faults.ts";
import { hashToShard } from "./hash.ts";
import { describeError, log } from "./log.ts";
import { type Result, err } from "./result.ts";
import type { RouteClass } from "../schemas/rate-limit.schema.ts";

/**
 * The rate limiter, without HTTP (producers/rate-limit.middleware.ts applies it to routes). Each
 * request is counted against its identifier's window in a `RateLimitShard` (an exact sliding log, docs/decisions/0003-rate-limiting.md). When the shard
 * cannot answer, D1 fixed-window counters decide, and when D1 cannot either, a fixed window in
 * this isolate's memory does: the limiter fails open (availability first), it never turns its own
 * outage into refused traffic.
 */

/**
 * How many `RateLimitShard`s identifiers are spread over. Deliberately a constant of its own and
 * not `SHARD_COUNT`: a limiter's state is its windows, so moving an identifier to another shard
 * starts it on an empty window (telemetry shards can move keys freely because every later stage
 * dedupes; a limiter has nothing downstream to catch up). Changing this number resets, once, the
 * windows of the identifiers that move; do it only in a release that accepts that.
 */
export const RATE_LIMIT_SHARD_COUNT = 16;

/** The Durable Object name of rate-limit shard `index` (0 ≤ index < RATE_LIMIT_SHARD_COUNT). */
export function rateLimitShardNameAt(index: number): string {
  return `rl-${index}`;
}

/** The Durable Object name of the shard that owns `identifier`. */
export function rateLimitShardName(identifier: string): string {
  return rateLimitShardNameAt(hashToShard(identifier, RATE_LIMIT_SHARD_COUNT));
}

export type DecisionSource = "shard" | "d1" | "memory";
export type SourcedDecision = RateLimitDecision & { source: DecisionSource };

export interface CheckOptions {
  /** Overrides `RATE_LIMITS` (tests exercise small limits without reconfiguring the Worker). */
  rule?: RateLimit;
  /** Clock override for tests; production leaves it to the shard's clock. */
  now?: number;
}

/** A shard that threw (unreachable, overloaded, reset) is as unavailable as one that said so. */
export type ShardFailure = RateLimitError | { reason: "unavailable" | "overloaded"; message: string };

/** Calls the shard that owns `identifier`; never throws. */
export async function callRateLimitShard<T>(
  env: Env,
  identifier: string,
  call: (shard: DurableObjectStub<RateLimitShard>) => Promise<Result<T, RateLimitError>>,
): Promise<Result<T, ShardFailure>> {
  try {
    fault("rate_limit.shard", { identifier });
    return await call(env.RATE_LIMIT_SHARD.getByName(rateLimitShardName(identifier)));
  } catch (error) {
    return err({ reason: isOverloaded(error) ? "overloaded" : "unavailable", message: describeError(error) });
  }
}

/**
 * Counts one request of `identifier` against its `routeClass` limit and says whether it may go
 * ahead. Shard first; on failure D1, then memory, each logged with its own code. An overloaded
 * shard (a hot key) goes straight to memory: D1 is the one writer the pipeline's flushes share.
 */
export async function checkRateLimit(
  env: Env,
  identifier: string,
  routeClass: RouteClass,
  options: CheckOptions = {},
): Promise<SourcedDecision> {
  const rule = options.rule ?? config(env).RATE_LIMITS[routeClass];
  const shard = await callRateLimitShard(env, identifier, (stub) =>
    stub.check({ identifier, routeClass, limit: rule.limit, windowS: rule.window_s, now: options.now }),
  );
  if (shard.ok) return { ...shard.value, source: "shard" };
  const context = { identifier, route_class: routeClass, shard: rateLimitShardName(identifier) };
  const now = options.now ?? Date.now();
  if (shard.error.reason === "overloaded") {
    // A hot key: its shard has more requests queued than it can take. Sending each of them to D1
    // instead would put that load on the one writer every telemetry and counter flush needs, so
    // this isolate counts them itself until the shard keeps up again.
    log.warn("rate_limit_shard_overloaded", { ...context, error: shard.error.message });
    return { ...fromMemory(identifier, routeClass, rule, now), source: "memory" };
  }
  log.warn("rate_limit_shard_unavailable", { ...context, reason: shard.error.reason, error: shard.error.message });
  try {
    return { ...(await fromD1(env, identifier, routeClass, rule, now)), source: "d1" };
  } catch (error) {
    log.error("rate_limit_d1_unavailable", { ...context, error: describeError(error) });
  }
  return { ...fromMemory(identifier, routeClass, rule, now), source: "memory" };
}

/**
 * Forgets `identifier`'s fallback state (D1 windows and this isolate's memory); the shard is reset
 * by the caller. Returns the D1 rows removed, or null when D1 could not be reached.
 */
export async function resetRateLimitFallbacks(env: Env, identifier: string): Promise<number | null> {
  for (const key of memoryWindows.keys()) {
    if (key.endsWith(`\u0000${identifier}`)) memoryWindows.delete(key);
  }
  try {
    fault("rate_limit.d1", { identifier });
    const result = await new D1Client(env.DB).run(
      env.DB.prepare("DELETE FROM rate_limit_windows WHERE identifier = ?").bind(identifier),
    );
    return result.meta.changes;
  } catch (error) {
    log.error("rate_limit_d1_unavailable", { identifier, operation: "reset", error: describeError(error) });
    return null;
  }
}

/** Start (epoch ms) of the fixed window holding `now`: windows are aligned to the epoch. */
function windowStartOf(now: number, windowMs: number): number {
  return now - (now % windowMs);
}

/**
 * A fixed-window decision: `count` requests (this one included) seen in the window that started
 * at `windowStart`. Up to twice the limit can pass around a window boundary; acceptable for a
 * fallback that only runs while a shard is down.
 */
function fixedWindowDecision(count: number, rule: RateLimit, windowStart: number, now: number): RateLimitDecision {
  const allowed = count <= rule.limit;
  const resetS = Math.max(1, Math.ceil((windowStart + rule.window_s * 1_000 - now) / 1_000));
  return {
    allowed,
    limit: rule.limit,
    remaining: Math.max(0, rule.limit - count),
    resetS,
    retryAfterS: allowed ? 0 : resetS,
  };
}

/**
 * D1 fallback: one round trip that drops the key's past windows (so the table holds at most one
 * row per key that was limited during an outage) and upserts the current one, returning its count.
 */
async function fromD1(
  env: Env,
  identifier: string,
  routeClass: RouteClass,
  rule: RateLimit,
  now: number,
): Promise<RateLimitDecision> {
  fault("rate_limit.d1", { identifier, routeClass });
  const windowStart = windowStartOf(now, rule.window_s * 1_000);
  const d1 = new D1Client(env.DB);
  const [, upsert] = await d1.batch<{ count: number }>([
    d1
      .prepare("DELETE FROM rate_limit_windows WHERE identifier = ? AND route_class = ? AND window_start < ?")
      .bind(identifier, routeClass, windowStart),
    d1
      .prepare(
        `INSERT INTO rate_limit_windows (identifier, route_class, window_start, count) VALUES (?, ?, ?, 1)
         ON CONFLICT (identifier, route_class, window_start) DO UPDATE SET count = count + 1
         RETURNING count`,
      )
      .bind(identifier, routeClass, windowStart),
  ]);
  const count = upsert?.results[0]?.count;
  if (typeof count !== "number") throw new Error("rate_limit_windows upsert returned no count");
  return fixedWindowDecision(count, rule, windowStart, now);
}

/** Last resort: fixed windows in this isolate's memory, bounded so a flood of identifiers cannot grow it. */
const MEMORY_MAX_KEYS = 10_000;
const memoryWindows = new Map<string, { windowStart: number; count: number }>();

/**
 * Per isolate, so a client spread over N isolates gets up to N × the limit: the fail-open end of
 * the chain, still enough to blunt a single hot client while both shard and D1 are down.
 */
function fromMemory(identifier: string, routeClass: RouteClass, rule: RateLimit, now: number): RateLimitDecision {
  const key = `${routeClass}\u0000${identifier}`;
  const windowStart = windowStartOf(now, rule.window_s * 1_000);
  let entry = memoryWindows.get(key);
  if (!entry || entry.windowStart !== windowStart) {
    entry = { windowStart, count: 0 };
    memoryWindows.delete(key);
    memoryWindows.set(key, entry);
    // Maps iterate in insertion order: the first key is the one least recently given a window.
    const oldest = memoryWindows.keys().next();
    if (memoryWindows.size > MEMORY_MAX_KEYS && !oldest.done) memoryWindows.delete(oldest.value);
  }
  entry.count++;
  return fixedWindowDecision(entry.count, rule, windowStart, now);
}
