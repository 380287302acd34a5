/**
 * The approximate sliding window of the rate limiter (docs/decisions/0003-rate-limiting.md): two
 * counters per key, the fixed window holding `now` and the one before it, and an estimate of the
 * requests in the sliding window ending now that weights the previous window by the share of it
 * still inside (Cloudflare's and Upstash's `slidingWindow`). Pure arithmetic, shared by the
 * isolate's cache (producers/rate-limiter.ts) and the shard's on-call view (durable/rate-limit-shard.do.ts).
 */

/** A limit: `limit` requests per `windowMs` milliseconds. */
export interface WindowRule {
  limit: number;
  windowMs: number;
}

/** What the limiter answers for one request. All durations are whole seconds, rounded up. */
export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  /** Requests still allowed in the sliding window ending now, after this one. */
  remaining: number;
  /** Seconds until the current fixed window ends and its count starts to age out; 0 when nothing is counted. */
  resetS: number;
  /** Seconds until a retry can succeed (if nothing else is counted meanwhile); 0 when allowed, at least 1 when refused. */
  retryAfterS: number;
}

/** Start (epoch ms) of the fixed window holding `now`: windows are aligned to the epoch. */
export function windowStartOf(now: number, windowMs: number): number {
  return now - (now % windowMs);
}

/** Requests in the sliding window ending at `now`, from the two fixed windows' counts. */
export function estimate(previous: number, current: number, now: number, windowMs: number): number {
  const elapsed = now % windowMs;
  return (previous * (windowMs - elapsed)) / windowMs + current;
}

/**
 * Milliseconds from `now` until the estimate falls to `target` or below, if nothing more is
 * counted: first the previous window's share decays (until this window ends), then, once this
 * window is the previous one, its own count does.
 */
export function msUntilEstimateAtMost(
  previous: number,
  current: number,
  target: number,
  now: number,
  windowMs: number,
): number {
  if (estimate(previous, current, now, windowMs) <= target) return 0;
  const elapsed = now % windowMs;
  const left = windowMs - elapsed;
  if (current <= target) {
    // previous·(W − e')/W + current ≤ target  ⇔  e' ≥ W − (target − current)·W/previous
    const at = windowMs - ((target - current) * windowMs) / previous;
    return Math.max(0, at - elapsed);
  }
  // In the next window: current·(W − e'')/W ≤ target  ⇔  e'' ≥ W·(1 − target/current)
  return left + windowMs * (1 - Math.max(0, target) / current);
}

/** Whole seconds, rounded up. */
function seconds(ms: number): number {
  return Math.ceil(ms / 1_000);
}

/**
 * The decision for one request given the two windows' counts (this request not included): allowed
 * if the estimate plus this request stays within the limit. Refused requests are not counted by
 * the caller, so a client that keeps hammering does not push its own retry time further away.
 */
export function decide(previous: number, current: number, rule: WindowRule, now: number): RateLimitDecision {
  const before = estimate(previous, current, now, rule.windowMs);
  const allowed = before + 1 <= rule.limit;
  const after = allowed ? before + 1 : before;
  const counted = allowed ? current + 1 : current;
  const untilWindowEnd = rule.windowMs - (now % rule.windowMs);
  return {
    allowed,
    limit: rule.limit,
    remaining: Math.max(0, Math.floor(rule.limit - after + 1e-9)),
    resetS: after > 0 ? Math.max(1, seconds(untilWindowEnd)) : 0,
    retryAfterS: allowed
      ? 0
      : Math.max(1, seconds(msUntilEstimateAtMost(previous, counted, rule.limit - 1, now, rule.windowMs))),
  };
}

/** The on-call view of a key's window: what `decide` would see, counting nothing. */
export function windowState(
  previous: number,
  current: number,
  rule: WindowRule,
  now: number,
): { used: number; remaining: number; resetS: number } {
  const used = estimate(previous, current, now, rule.windowMs);
  return {
    used: Math.max(0, Math.ceil(used - 1e-9)),
    remaining: Math.max(0, Math.floor(rule.limit - used + 1e-9)),
    resetS: used > 0 ? Math.max(1, seconds(rule.windowMs - (now % rule.windowMs))) : 0,
  };
}
