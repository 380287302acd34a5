import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { hashToShard } from "../lib/hash.ts";
import { describeError, log } from "../lib/log.ts";
import { type Err, type Result, err, ok } from "../lib/result.ts";
import { windowStartOf, windowState } from "../lib/sliding-window.ts";
import { RateLimitIdentifierSchema, type RouteClass, RouteClassSchema } from "../schemas/rate-limit.schema.ts";
import { RATE_LIMIT_SHARD_MIGRATIONS, type WindowRow } from "./rate-limit-shard.migrations.ts";
import { applySchema } from "./sql-schema.ts";

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

/** Keys whose windows no longer count are swept by an alarm this often. */
export const IDLE_SWEEP_INTERVAL_MS = 3_600_000;
/** Window rows swept per alarm, so one alarm stays short; more than this re-arms the alarm at once. */
export const IDLE_SWEEP_MAX_ROWS = 1_000;
/** Keys per `sync` call: an isolate's batch for one shard, bounded so one transaction stays short. */
export const SYNC_MAX_KEYS = 500;

const WindowSSchema = z.number().int().min(1).max(86_400);
const RuleSchema = z.object({ limit: z.number().int().min(1).max(1_000_000), windowS: WindowSSchema });
export type Rule = z.infer<typeof RuleSchema>;

/** `now` exists for tests (workerd's Date cannot be faked inside a Durable Object); callers omit it. */
const NowSchema = z.number().int().nonnegative().optional();

const SyncKeySchema = z
  .object({
    identifier: RateLimitIdentifierSchema,
    routeClass: RouteClassSchema,
    windowS: WindowSSchema,
    /** Start (epoch ms) of the isolate's current fixed window: a multiple of `windowS` × 1000. */
    current: z.number().int().nonnegative(),
    /** Requests the isolate allowed since its last sync, per fixed window (the current and/or the previous one). */
    deltas: z
      .array(z.object({ start: z.number().int().nonnegative(), count: z.number().int().min(1).max(1_000_000) }))
      .max(2),
  })
  .refine((key) => key.current % (key.windowS * 1_000) === 0, { message: "current must be a window start" });

const SyncSchema = z.object({ keys: z.array(SyncKeySchema).min(1).max(SYNC_MAX_KEYS) });
export type SyncRequest = z.input<typeof SyncSchema>;
export type SyncKey = z.input<typeof SyncKeySchema>;

/** Per key of a `sync`, in the request's order: the counts of every isolate, this sync's deltas included. */
export interface WindowCounts {
  /** Requests allowed in the fixed window starting at the request's `current`. */
  current: number;
  /** Requests allowed in the fixed window before it. */
  previous: number;
}

const PeekSchema = z.object({
  identifier: RateLimitIdentifierSchema,
  rules: z.object({ ingest: RuleSchema, webhook: RuleSchema, admin: RuleSchema }),
  now: NowSchema,
});
export type PeekRequest = z.input<typeof PeekSchema>;

/** One key's window as `peek` sees it, without counting a request. */
export interface WindowState extends Rule, WindowCounts {
  /** The sliding-window estimate of requests in the window ending now, rounded up. */
  used: number;
  remaining: number;
  resetS: number;
}

export type RateLimitError =
  | { reason: "invalid_request"; message: string }
  | { reason: "storage_failed"; message: string };

/** SQLite work done by this instance since it started: the limiter's cost (bench hook). */
export interface RateLimitCost {
  calls: number;
  /** Keys carried by those calls (a sync carries every key of one isolate that hashes here). */
  keys: number;
  rowsRead: number;
  rowsWritten: number;
}

/**
 * Rate limits for the identifiers that hash to this shard (`rl-<n>`, see producers/rate-limiter.ts):
 * the authority every isolate's counts are summed in. Per (identifier, route class), one count
 * per fixed window; the limiter estimates the sliding window from the current and the previous
 * one (lib/sliding-window.ts).
 *
 * Isolates decide requests themselves from the counts they last saw here plus what they allowed
 * since, and `sync` in batches: one call carries every key of that isolate on this shard, adds its
 * counts, and answers the totals of all isolates. So the shard sees about one call per isolate per
 * sync interval, however many requests those isolates serve (docs/decisions/0003-rate-limiting.md).
 */
export class RateLimitShard extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #schemaVersion: number;
  readonly #cost: RateLimitCost = { calls: 0, keys: 0, rowsRead: 0, rowsWritten: 0 };
  /** Only saves a `getAlarm` per call; a new instance (after eviction) re-reads storage. */
  #sweepArmed = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#schemaVersion = applySchema(ctx.storage, RATE_LIMIT_SHARD_MIGRATIONS);
  }

  /**
   * Adds one isolate's counts and answers every isolate's totals, for each key, in one
   * transaction. A delta for a window older than the previous one no longer matters to any
   * decision and is dropped; windows older than that are deleted as the key syncs.
   */
  async sync(request: SyncRequest): Promise<Result<WindowCounts[], RateLimitError>> {
    const parsed = SyncSchema.safeParse(request);
    if (!parsed.success) return err({ reason: "invalid_request", message: z.prettifyError(parsed.error) });
    this.#cost.calls++;
    this.#cost.keys += parsed.data.keys.length;
    let counts: WindowCounts[];
    try {
      counts = this.ctx.storage.transactionSync(() => parsed.data.keys.map((key) => this.#sync(key)));
    } catch (error) {
      return this.#storageFailed("sync", parsed.data.keys[0]?.identifier ?? "", error);
    }
    await this.#armSweep();
    return ok(counts);
  }

  /** The current window of `identifier` for every route class, under `rules`; counts nothing. */
  async peek(request: PeekRequest): Promise<Result<Record<RouteClass, WindowState>, RateLimitError>> {
    const parsed = PeekSchema.safeParse(request);
    if (!parsed.success) return err({ reason: "invalid_request", message: z.prettifyError(parsed.error) });
    const { identifier, rules, now = Date.now() } = parsed.data;
    this.#cost.calls++;
    try {
      return ok({
        ingest: this.#peek(identifier, "ingest", rules.ingest, now),
        webhook: this.#peek(identifier, "webhook", rules.webhook, now),
        admin: this.#peek(identifier, "admin", rules.admin, now),
      });
    } catch (error) {
      return this.#storageFailed("peek", identifier, error);
    }
  }

  /** Forgets every counted request of `identifier` (all route classes). Returns how many were counted. */
  async reset(identifier: string): Promise<Result<{ clearedHits: number }, RateLimitError>> {
    const parsed = RateLimitIdentifierSchema.safeParse(identifier);
    if (!parsed.success) return err({ reason: "invalid_request", message: z.prettifyError(parsed.error) });
    this.#cost.calls++;
    try {
      const rows = this.#exec<Pick<WindowRow, "count">>(
        "DELETE FROM windows WHERE identifier = ? RETURNING count",
        parsed.data,
      );
      const clearedHits = rows.reduce((sum, row) => sum + row.count, 0);
      log.info("rate_limit_reset", { shard: this.#name(), identifier: parsed.data, cleared_hits: clearedHits });
      return ok({ clearedHits });
    } catch (error) {
      return this.#storageFailed("reset", parsed.data, error);
    }
  }

  /** SQLite rows read and written by this instance so far, and its schema version (bench hook). */
  async cost(): Promise<RateLimitCost & { schemaVersion: number }> {
    return { ...this.#cost, schemaVersion: this.#schemaVersion };
  }

  /**
   * Sweeps windows that no longer count (keys that went quiet): a key's old windows are
   * otherwise only deleted when it syncs again.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const swept = this.#exec(
      `DELETE FROM windows WHERE (identifier, route_class, window_start) IN
         (SELECT identifier, route_class, window_start FROM windows WHERE idle_at <= ? ORDER BY idle_at LIMIT ?)
       RETURNING idle_at`,
      now,
      IDLE_SWEEP_MAX_ROWS,
    ).length;
    this.#sweepArmed = false;
    if (swept === IDLE_SWEEP_MAX_ROWS) {
      await this.ctx.storage.setAlarm(now);
      this.#sweepArmed = true;
      return;
    }
    await this.#armSweep();
  }

  #sync(key: z.infer<typeof SyncKeySchema>): WindowCounts {
    const windowMs = key.windowS * 1_000;
    const previousStart = key.current - windowMs;
    for (const delta of key.deltas) {
      if (delta.start !== key.current && delta.start !== previousStart) continue;
      this.#exec(
        `INSERT INTO windows (identifier, route_class, window_start, count, idle_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (identifier, route_class, window_start) DO UPDATE SET count = count + excluded.count`,
        key.identifier,
        key.routeClass,
        delta.start,
        delta.count,
        delta.start + 2 * windowMs,
      );
    }
    this.#exec(
      "DELETE FROM windows WHERE identifier = ? AND route_class = ? AND window_start < ?",
      key.identifier,
      key.routeClass,
      previousStart,
    );
    return this.#counts(key.identifier, key.routeClass, key.current, windowMs);
  }

  #counts(identifier: string, routeClass: RouteClass, current: number, windowMs: number): WindowCounts {
    const rows = this.#exec<Pick<WindowRow, "window_start" | "count">>(
      "SELECT window_start, count FROM windows WHERE identifier = ? AND route_class = ? AND window_start >= ?",
      identifier,
      routeClass,
      current - windowMs,
    );
    const countAt = (start: number) => rows.find((row) => row.window_start === start)?.count ?? 0;
    return { current: countAt(current), previous: countAt(current - windowMs) };
  }

  #peek(identifier: string, routeClass: RouteClass, rule: Rule, now: number): WindowState {
    const windowMs = rule.windowS * 1_000;
    const counts = this.#counts(identifier, routeClass, windowStartOf(now, windowMs), windowMs);
    return {
      ...rule,
      ...counts,
      ...windowState(counts.previous, counts.current, { limit: rule.limit, windowMs }, now),
    };
  }

  /** Arms the idle sweep unless it is armed already or there is nothing to sweep. */
  async #armSweep(): Promise<void> {
    if (this.#sweepArmed) return;
    if (this.#exec("SELECT 1 AS one FROM windows LIMIT 1").length === 0) return;
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Date.now() + IDLE_SWEEP_INTERVAL_MS);
    }
    this.#sweepArmed = true;
  }

  /** Runs one statement to completion and adds its rows read and written to the cost counters. */
  #exec<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: SqlStorageValue[]): T[] {
    const cursor = this.#sql.exec<T>(query, ...bindings);
    const rows = cursor.toArray();
    this.#cost.rowsRead += cursor.rowsRead;
    this.#cost.rowsWritten += cursor.rowsWritten;
    return rows;
  }

  #storageFailed(operation: string, identifier: string, error: unknown): Err<RateLimitError> {
    const message = describeError(error);
    log.error("rate_limit_storage_failed", { shard: this.#name(), operation, identifier, error: message });
    return err({ reason: "storage_failed", message });
  }

  #name(): string {
    return this.ctx.id.name ?? this.ctx.id.toString();
  }
}
