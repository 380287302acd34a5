import {
  type RateLimitError,
  type RateLimitShard,
  SYNC_MAX_KEYS,
  type SyncKey,
  type WindowCounts,
  rateLimitShardName,
} from "../durable/rate-limit-shard.do.ts";
import type { RouteClass } from "../schemas/rate-limit.schema.ts";
import { type RateLimit, config } from "../lib/config.ts";
import { D1Client } from "../lib/d1.ts";
import { isOverloaded } from "../lib/durable-object-errors.ts";
import { fault } from "../lib/faults.ts";
import { describeError, log } from "../lib/log.ts";
import { type Result, err, ok } from "../lib/result.ts";
import { type RateLimitDecision, decide, estimate, windowStartOf } from "../lib/sliding-window.ts";

export type { RateLimitDecision } from "../lib/sliding-window.ts";

/**
 * The rate limiter, without HTTP (producers/rate-limit.middleware.ts applies it to routes).
 *
 * An approximate sliding window (lib/sliding-window.ts: two fixed-window counts per key) decided
 * in the isolate: each isolate keeps, per key, the counts it last read from the key's
 * `RateLimitShard` (every isolate's requests) plus the requests it allowed since, and decides
 * from those without a call. Every `SYNC_INTERVAL_MS` at most, one call per shard sends this
 * isolate's new counts for all its keys on that shard and reads back the totals; the request
 * that makes it due does not wait for it. A key this isolate has not synced for `MAX_STALE_MS`
 * (new here, or quiet) is synced before its decision. So the shard sees about one call per
 * isolate per interval, however many requests, and no request waits for a durable write
 * (docs/decisions/0003-rate-limiting.md says what accuracy that gives up, measured).
 *
 * When the shard cannot answer a sync a decision waits for, D1 fixed-window counters decide, and
 * when D1 cannot either, a fixed window in this isolate's memory does: the limiter fails open
 * (availability first), it never turns its own outage into refused traffic.
 */

/** Longest an isolate goes between syncs of a shard it has new counts for. */
export const SYNC_INTERVAL_MS = 250;
/** A key whose counts this isolate last read longer ago than this is synced before it is decided. */
export const MAX_STALE_MS = 2_000;
/**
 * Share of a key's remaining budget (as of its last sync) one isolate may allow before it syncs
 * again, waiting: other isolates may be spending the same budget meanwhile. Near the limit that
 * is every request; far from it, almost never. At least `MIN_BUDGET_SHARE` of the limit, so a
 * key running at a large limit costs its shard at most ~1 / MIN_BUDGET_SHARE waiting syncs per
 * window and isolate, not one per request (over-admitting by at most that share per isolate).
 */
export const BUDGET_SHARE = 0.25;
export const MIN_BUDGET_SHARE = 0.01;
/**
 * Longest a decision waits for a sync (its own, or one another request of the isolate started);
 * then it is decided as if the shard were unavailable (D1, then memory).
 */
export const SYNC_WAIT_MS = 2_000;
/** Keys one isolate keeps (least recently rolled into a new window are dropped first). */
const MAX_KEYS = 10_000;

export type DecisionSource = "shard" | "d1" | "memory";
export type SourcedDecision = RateLimitDecision & { source: DecisionSource };

export interface CheckOptions {
  /** Overrides `RATE_LIMITS` (tests exercise small limits without reconfiguring the Worker). */
  rule?: RateLimit;
  /** Clock override for tests. */
  now?: number;
  /**
   * The request's `ctx.waitUntil`: every sync a request starts is registered with it, so the
   * request's context outlives the call even if its client goes away (other requests of the
   * isolate may be waiting for the same sync).
   */
  waitUntil?: WaitUntil;
}

type WaitUntil = (promise: Promise<unknown>) => void;

/** A shard that threw (unreachable, overloaded, reset) is as unavailable as one that said so. */
export type ShardFailure = RateLimitError | { reason: "unavailable" | "overloaded"; message: string };

/** Calls the shard named `shard` about `identifiers`; never throws. */
async function callShard<T>(
  env: Env,
  shard: string,
  identifiers: readonly string[],
  call: (stub: DurableObjectStub<RateLimitShard>) => Promise<Result<T, RateLimitError>>,
): Promise<Result<T, ShardFailure>> {
  try {
    for (const identifier of identifiers) fault("rate_limit.shard", { identifier });
    return await call(env.RATE_LIMIT_SHARD.getByName(shard));
  } catch (error) {
    return err({ reason: isOverloaded(error) ? "overloaded" : "unavailable", message: describeError(error) });
  }
}

/** Calls the shard that owns `identifier`; never throws. */
export function callRateLimitShard<T>(
  env: Env,
  identifier: string,
  call: (shard: DurableObjectStub<RateLimitShard>) => Promise<Result<T, RateLimitError>>,
): Promise<Result<T, ShardFailure>> {
  return callShard(env, rateLimitShardName(identifier), [identifier], call);
}

/** One fixed window of a key as this isolate knows it. */
interface Slot {
  start: number;
  /** Every isolate's count as the shard last answered it (this isolate's synced counts included). */
  synced: number;
  /** Counted here and on its way to the shard in the sync now in flight. */
  inflight: number;
  /** Counted here since, not sent yet. */
  pending: number;
}

/** One (identifier, route class) in this isolate. */
interface KeyState {
  key: string;
  identifier: string;
  routeClass: RouteClass;
  shard: string;
  windowMs: number;
  /** The current fixed window and the one before, newest last; at most two. */
  slots: Slot[];
  /** When this isolate last read the key's counts from its shard (-Infinity: never). */
  syncedAt: number;
  /** The limit of the key's last decision. */
  limit: number;
  /** Requests this isolate allowed that its last read of the counts did not include. */
  unsynced: number;
  /** How many of those it may allow before a decision waits for a sync (`BUDGET_SHARE`). */
  budget: number;
}

type SyncResult = Result<void, ShardFailure>;

/** One sync on its way. `abandoned`: given up on (it outlived `SYNC_WAIT_MS`); its answer is ignored. */
interface Flight {
  keys: Set<KeyState>;
  done: Promise<SyncResult>;
  abandoned: boolean;
}

/**
 * This isolate's link to one shard: the keys it has news for, at most one sync in flight (a
 * slot's `inflight` is exactly what that one sync carries), and the sync queued behind it.
 */
interface ShardLink {
  name: string;
  dirty: Set<KeyState>;
  inflight: Flight | null;
  next: Promise<SyncResult> | null;
  lastSyncAt: number;
}

/** What one isolate's limiter did since it started (`GET /v1/admin/metrics`, the benchmark). */
export interface LimiterStats {
  decisions: number;
  /** Sync calls to shards (each carries every key of this isolate on that shard with news). */
  syncs: number;
  /** Syncs a decision waited for (a key new here or quiet for `MAX_STALE_MS`). */
  awaitedSyncs: number;
  syncFailures: number;
  fallbacks: number;
}

function slotCount(slot: Slot | undefined): number {
  return slot ? slot.synced + slot.inflight + slot.pending : 0;
}

/**
 * One isolate's rate limiter (the Worker uses `isolateLimiter`; tests make several to stand for
 * several isolates against the same shards).
 */
export class RateLimiter {
  readonly stats: LimiterStats = { decisions: 0, syncs: 0, awaitedSyncs: 0, syncFailures: 0, fallbacks: 0 };
  readonly #syncIntervalMs: number;
  readonly #maxStaleMs: number;
  readonly #keys = new Map<string, KeyState>();
  readonly #links = new Map<string, ShardLink>();
  /** Last resort: fixed windows in this isolate's memory, bounded like the keys. */
  readonly #memory = new Map<string, { windowStart: number; count: number }>();

  constructor(options: { syncIntervalMs?: number; maxStaleMs?: number } = {}) {
    this.#syncIntervalMs = options.syncIntervalMs ?? SYNC_INTERVAL_MS;
    this.#maxStaleMs = options.maxStaleMs ?? MAX_STALE_MS;
  }

  /**
   * Counts one request of `identifier` against its `routeClass` limit and says whether it may go
   * ahead. From this isolate's view of the shard's counts; a sync the decision has to wait for
   * that fails falls back to D1, then memory, each logged with its own code. An overloaded shard
   * (a hot key) goes straight to memory: D1 is the one writer the pipeline's flushes share.
   */
  async check(
    env: Env,
    identifier: string,
    routeClass: RouteClass,
    options: CheckOptions = {},
  ): Promise<SourcedDecision> {
    const rule = options.rule ?? config(env).RATE_LIMITS[routeClass];
    const now = options.now ?? Date.now();
    this.stats.decisions++;
    const state = this.#state(identifier, routeClass, rule.window_s * 1_000, now);
    state.limit = rule.limit;
    // Bounded: concurrent requests of one isolate can use up a fresh budget while they wait
    // together; after a few rounds the decision goes ahead on what is known.
    for (let round = 0; round < 3 && this.#mustSync(state, now); round++) {
      this.stats.awaitedSyncs++;
      const synced = await this.#syncBefore(env, state, now, options.waitUntil);
      if (!synced.ok) return this.#fallback(env, state, rule, now, synced.error);
    }
    const [previous, current] = this.#roll(state, now);
    const decision = decide(
      slotCount(previous),
      slotCount(current),
      { limit: rule.limit, windowMs: state.windowMs },
      now,
    );
    if (decision.allowed && current) {
      current.pending++;
      state.unsynced++;
      this.#link(state.shard).dirty.add(state);
    }
    const link = this.#link(state.shard);
    if (!link.inflight && !link.next && link.dirty.size > 0 && now - link.lastSyncAt >= this.#syncIntervalMs) {
      const background = this.#send(env, link, now).then((result) => {
        // Its counts stay pending for the next sync; decisions go on from the cached view until
        // it is MAX_STALE_MS old, then wait for a sync (and fall back if that fails too).
        if (!result.ok) {
          log.warn("rate_limit_shard_unavailable", {
            shard: link.name,
            reason: result.error.reason,
            error: result.error.message,
            background: true,
          });
        }
        return result.ok;
      });
      options.waitUntil?.(background);
    }
    return { ...decision, source: "shard" };
  }

  /**
   * Sends this isolate's counts for `identifier`'s shard now and waits for the answer (the
   * on-call view reads the shard after it, so it includes this isolate's latest requests).
   */
  async flush(env: Env, identifier: string, now = Date.now()): Promise<SyncResult> {
    const link = this.#link(rateLimitShardName(identifier));
    if (link.dirty.size === 0 && !link.inflight) return ok(undefined);
    return this.#wait(link, this.#requestSync(env, link, now));
  }

  /** Forgets `identifier` in this isolate: its counts (sent or not) and its fallback windows. */
  forget(identifier: string): void {
    for (const [key, state] of this.#keys) {
      if (state.identifier !== identifier) continue;
      this.#keys.delete(key);
      this.#links.get(state.shard)?.dirty.delete(state);
    }
    for (const key of this.#memory.keys()) {
      if (key.endsWith(`\u0000${identifier}`)) this.#memory.delete(key);
    }
  }

  /** A decision must wait for a sync: the key is new here or quiet, or this isolate used its share. */
  #mustSync(state: KeyState, now: number): boolean {
    return now - state.syncedAt > this.#maxStaleMs || state.unsynced >= state.budget;
  }

  #link(name: string): ShardLink {
    let link = this.#links.get(name);
    if (!link) {
      link = { name, dirty: new Set(), inflight: null, next: null, lastSyncAt: -Infinity };
      this.#links.set(name, link);
    }
    return link;
  }

  #state(identifier: string, routeClass: RouteClass, windowMs: number, now: number): KeyState {
    const key = `${routeClass}\u0000${identifier}`;
    let state = this.#keys.get(key);
    if (state && state.windowMs !== windowMs) {
      // The window was reconfigured: counts of another window length do not carry over.
      this.#links.get(state.shard)?.dirty.delete(state);
      state = undefined;
    }
    if (!state) {
      state = {
        key,
        identifier,
        routeClass,
        shard: rateLimitShardName(identifier),
        windowMs,
        slots: [{ start: windowStartOf(now, windowMs), synced: 0, inflight: 0, pending: 0 }],
        syncedAt: -Infinity,
        limit: 1,
        unsynced: 0,
        budget: 1,
      };
      this.#touch(state);
    }
    return state;
  }

  /** (Re)inserts `state` as the most recent key, dropping the oldest beyond `MAX_KEYS`. */
  #touch(state: KeyState): void {
    this.#keys.delete(state.key);
    this.#keys.set(state.key, state);
    if (this.#keys.size <= MAX_KEYS) return;
    // Maps iterate in insertion order: the first key is the one least recently rolled.
    const oldest = this.#keys.values().next();
    if (oldest.done) return;
    this.#keys.delete(oldest.value.key);
    this.#links.get(oldest.value.shard)?.dirty.delete(oldest.value);
  }

  /** Moves `state` to the fixed window holding `now`; returns its [previous, current] slots. */
  #roll(state: KeyState, now: number): [Slot | undefined, Slot | undefined] {
    const start = windowStartOf(now, state.windowMs);
    const last = state.slots.at(-1);
    if (last && last.start === start) return [state.slots.length > 1 ? state.slots[0] : undefined, last];
    if (last && last.start > start) {
      // A clock override (tests) went back in time: answer from what is known for that window.
      const slot = state.slots.find((s) => s.start === start);
      return [state.slots.find((s) => s.start === start - state.windowMs), slot];
    }
    const kept = state.slots.filter((slot) => slot.start === start - state.windowMs);
    const current: Slot = { start, synced: 0, inflight: 0, pending: 0 };
    state.slots = [...kept, current];
    this.#touch(state);
    return [kept[0], current];
  }

  /** Waits for a sync that includes `state`: the one in flight if it does, else the next one. */
  async #syncBefore(env: Env, state: KeyState, now: number, waitUntil?: WaitUntil): Promise<SyncResult> {
    const link = this.#link(state.shard);
    if (link.inflight?.keys.has(state)) return this.#wait(link, link.inflight.done);
    // Bounded: a sync carries up to SYNC_MAX_KEYS keys, so behind a backlog of more, a key may
    // need a few; past that the shard is as good as unavailable to this decision.
    for (let round = 0; round < 4; round++) {
      link.dirty.add(state);
      const result = await this.#wait(link, this.#requestSync(env, link, now, waitUntil));
      if (!this.#mustSync(state, now) || !result.ok) return result;
    }
    return err({ reason: "unavailable", message: `no sync of ${link.name} included this key in 4 rounds` });
  }

  /** The next sync of `link`: now if none is in flight, else the one queued right behind it. */
  #requestSync(env: Env, link: ShardLink, now: number, waitUntil?: WaitUntil): Promise<SyncResult> {
    if (link.next) return link.next;
    if (!link.inflight) {
      const sent = this.#send(env, link, now);
      waitUntil?.(sent);
      return sent;
    }
    const next = link.inflight.done.then(() => {
      link.next = null;
      return this.#send(env, link, now);
    });
    link.next = next;
    waitUntil?.(next);
    return next;
  }

  /**
   * `sync`, or an `unavailable` failure after `SYNC_WAIT_MS`: a sync another request started is
   * that request's I/O, and if its context ends early the sync may never settle here.
   */
  async #wait(link: ShardLink, sync: Promise<SyncResult>): Promise<SyncResult> {
    let timer: number | null = null;
    const timeout = new Promise<SyncResult>((resolve) => {
      timer = setTimeout(
        () => resolve(err({ reason: "unavailable", message: `${link.name} did not answer within ${SYNC_WAIT_MS} ms` })),
        SYNC_WAIT_MS,
      );
    });
    try {
      const flight = link.inflight;
      const result = await Promise.race([sync, timeout]);
      // Still the same sync in flight after the whole wait: stuck (its own or the one ahead of it).
      if (
        !result.ok &&
        flight &&
        link.inflight === flight &&
        result.error.message.endsWith(`within ${SYNC_WAIT_MS} ms`)
      ) {
        this.#abandon(link, flight);
      }
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One sync of `link`'s shard: this isolate's new counts for every key with news go out, every
   * isolate's totals come back. Only ever called with no sync in flight on the link.
   */
  #send(env: Env, link: ShardLink, now: number): Promise<SyncResult> {
    const states = [...link.dirty].slice(0, SYNC_MAX_KEYS);
    for (const state of states) link.dirty.delete(state);
    const keys: SyncKey[] = states.map((state) => {
      this.#roll(state, now);
      const deltas: { start: number; count: number }[] = [];
      for (const slot of state.slots) {
        slot.inflight = slot.pending;
        slot.pending = 0;
        if (slot.inflight > 0) deltas.push({ start: slot.start, count: slot.inflight });
      }
      return {
        identifier: state.identifier,
        routeClass: state.routeClass,
        windowS: state.windowMs / 1_000,
        current: windowStartOf(now, state.windowMs),
        deltas,
      };
    });
    link.lastSyncAt = now;
    this.stats.syncs++;
    const done = callShard(
      env,
      link.name,
      states.map((state) => state.identifier),
      (stub) => stub.sync({ keys }),
    ).then((result): SyncResult => {
      // Given up on already: its counts went back to pending then, and will be sent again.
      if (flight.abandoned) return result.ok ? ok(undefined) : result;
      link.inflight = null;
      for (const [i, state] of states.entries()) {
        const counts: WindowCounts | undefined = result.ok ? result.value[i] : undefined;
        const current = keys[i]?.current ?? 0;
        for (const slot of state.slots) {
          if (counts && slot.start === current) slot.synced = counts.current;
          else if (counts && slot.start === current - state.windowMs) slot.synced = counts.previous;
          // Not sent after all: the next sync takes it (a reply lost after the shard applied it
          // counts it twice, erring on the side of the limit).
          else if (!counts) slot.pending += slot.inflight;
          slot.inflight = 0;
        }
        if (counts) this.#synced(state, now);
        else if (state.slots.some((slot) => slot.pending > 0)) link.dirty.add(state);
      }
      if (!result.ok) {
        this.stats.syncFailures++;
        return result;
      }
      return ok(undefined);
    });
    const flight: Flight = { keys: new Set(states), done, abandoned: false };
    link.inflight = flight;
    return done;
  }

  /**
   * A sync that has not settled for `SYNC_WAIT_MS` is given up on, so it cannot hold the link
   * forever: its request's context may have ended with its I/O (the answer then never comes). Its
   * counts go back to pending for the next sync (if the shard did apply them, they count twice:
   * on the side of the limit), and the sync queued behind it goes too.
   */
  #abandon(link: ShardLink, flight: Flight): void {
    flight.abandoned = true;
    for (const state of flight.keys) {
      for (const slot of state.slots) {
        slot.pending += slot.inflight;
        slot.inflight = 0;
      }
      link.dirty.add(state);
    }
    link.inflight = null;
    link.next = null;
  }

  /** After a sync answered `state`'s counts: fresh, and a new share of what remains. */
  #synced(state: KeyState, now: number): void {
    state.syncedAt = now;
    state.unsynced = state.slots.reduce((sum, slot) => sum + slot.pending, 0);
    const start = windowStartOf(now, state.windowMs);
    const current = state.slots.find((slot) => slot.start === start);
    const previous = state.slots.find((slot) => slot.start === start - state.windowMs);
    const used = estimate(slotCount(previous), slotCount(current), now, state.windowMs);
    state.budget = Math.max(
      1,
      Math.floor((state.limit - used) * BUDGET_SHARE),
      Math.floor(state.limit * MIN_BUDGET_SHARE),
    );
  }

  async #fallback(
    env: Env,
    state: KeyState,
    rule: RateLimit,
    now: number,
    failure: ShardFailure,
  ): Promise<SourcedDecision> {
    this.stats.fallbacks++;
    const { identifier, routeClass } = state;
    const context = { identifier, route_class: routeClass, shard: state.shard };
    if (failure.reason === "overloaded") {
      // A hot key: its shard has more requests queued than it can take. Sending each of them to D1
      // instead would put that load on the one writer every telemetry and counter flush needs, so
      // this isolate counts them itself until the shard keeps up again.
      log.warn("rate_limit_shard_overloaded", { ...context, error: failure.message });
      return { ...this.#fromMemory(state.key, rule, now), source: "memory" };
    }
    log.warn("rate_limit_shard_unavailable", { ...context, reason: failure.reason, error: failure.message });
    try {
      return { ...(await fromD1(env, identifier, routeClass, rule, now)), source: "d1" };
    } catch (error) {
      log.error("rate_limit_d1_unavailable", { ...context, error: describeError(error) });
    }
    return { ...this.#fromMemory(state.key, rule, now), source: "memory" };
  }

  /**
   * Per isolate, so a client spread over N isolates gets up to N × the limit: the fail-open end of
   * the chain, still enough to blunt a single hot client while both shard and D1 are down.
   */
  #fromMemory(key: string, rule: RateLimit, now: number): RateLimitDecision {
    const windowStart = windowStartOf(now, rule.window_s * 1_000);
    let entry = this.#memory.get(key);
    if (!entry || entry.windowStart !== windowStart) {
      entry = { windowStart, count: 0 };
      this.#memory.delete(key);
      this.#memory.set(key, entry);
      const oldest = this.#memory.keys().next();
      if (this.#memory.size > MAX_KEYS && !oldest.done) this.#memory.delete(oldest.value);
    }
    entry.count++;
    return fixedWindowDecision(entry.count, rule, windowStart, now);
  }
}

/** The Worker's limiter: one per isolate (module state lives as long as the isolate). */
export const isolateLimiter = new RateLimiter();

/** `isolateLimiter.check`: counts one request and says whether it may go ahead. */
export function checkRateLimit(
  env: Env,
  identifier: string,
  routeClass: RouteClass,
  options: CheckOptions = {},
): Promise<SourcedDecision> {
  return isolateLimiter.check(env, identifier, routeClass, options);
}

/**
 * Forgets `identifier`'s state outside its shard (this isolate's counts and memory windows, the
 * D1 fallback windows); the shard is reset by the caller. Returns the D1 rows removed, or null
 * when D1 could not be reached. Other isolates read the reset at their next sync.
 */
export async function resetRateLimitFallbacks(env: Env, identifier: string): Promise<number | null> {
  isolateLimiter.forget(identifier);
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
