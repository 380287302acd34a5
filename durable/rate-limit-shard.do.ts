import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { describeError, log } from "../lib/log.ts";
import { type Err, type Result, err, ok } from "../lib/result.ts";
import { RateLimitIdentifierSchema, type RouteClass, RouteClassSchema } from "../schemas/rate-limit.schema.ts";
import { type KeyRow, RATE_LIMIT_SHARD_MIGRATIONS } from "./rate-limit-shard.migrations.ts";
import { applySchema } from "./sql-schema.ts";

/** Keys whose every hit has left the window are swept by an alarm this often. */
export const IDLE_SWEEP_INTERVAL_MS = 3_600_000;
/** Keys swept per alarm, so one alarm stays short; more than this re-arms the alarm at once. */
export const IDLE_SWEEP_MAX_KEYS = 1_000;

const RuleSchema = z.object({
  limit: z.number().int().min(1).max(1_000_000),
  windowS: z.number().int().min(1).max(86_400),
});
export type Rule = z.infer<typeof RuleSchema>;

/** `now` exists for tests (workerd's Date cannot be faked inside a Durable Object); callers omit it. */
const NowSchema = z.number().int().nonnegative().optional();

const CheckSchema = RuleSchema.extend({
  identifier: RateLimitIdentifierSchema,
  routeClass: RouteClassSchema,
  now: NowSchema,
});
export type CheckRequest = z.input<typeof CheckSchema>;

const PeekSchema = z.object({
  identifier: RateLimitIdentifierSchema,
  rules: z.object({ ingest: RuleSchema, webhook: RuleSchema, admin: RuleSchema }),
  now: NowSchema,
});
export type PeekRequest = z.input<typeof PeekSchema>;

/** The answer to one request. All durations are whole seconds, rounded up. */
export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  /** Requests still allowed in the window ending now, after this one. */
  remaining: number;
  /** Seconds until the oldest counted request leaves the window (a slot frees); 0 when none is counted. */
  resetS: number;
  /** Seconds until a retry can succeed; 0 when allowed, at least 1 when refused. */
  retryAfterS: number;
}

/** One key's window as `peek` sees it, without counting a request. */
export interface WindowState extends Rule {
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
  rowsRead: number;
  rowsWritten: number;
}

/**
 * Rate limits for the identifiers that hash to this shard (`rl-<n>`, see lib/rate-limiter.ts),
 * one sliding window per (identifier, route class).
 *
 * Algorithm: an exact sliding log, not the weighted two-window approximation. The approximation
 * assumes requests were spread evenly over the previous window; a burst at the end of it is
 * under-weighted, so at 5× the limit it lets through more or fewer than the limit depending on
 * where the burst falls. The requirement is exactly `limit` allowed per window at 5× the limit,
 * which only the log meets. Its cost stays small because refused requests are never logged (a key
 * holds at most `limit` rows) and `keys.used` carries the count, so a check reads and writes a
 * handful of rows whatever the limit (amortised: each logged hit is inserted once and deleted
 * once). Figures in docs/decisions/0003-rate-limiting.md; `cost()` measures them.
 */
export class RateLimitShard extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #schemaVersion: number;
  readonly #cost: RateLimitCost = { calls: 0, rowsRead: 0, rowsWritten: 0 };
  /** Only saves a `getAlarm` per call; a new instance (after eviction) re-reads storage. */
  #sweepArmed = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#schemaVersion = applySchema(ctx.storage, RATE_LIMIT_SHARD_MIGRATIONS);
  }

  /**
   * Counts one request of `identifier` on `routeClass` against `limit` per `windowS` seconds:
   * allowed if fewer than `limit` requests were allowed in the last `windowS` seconds, and then
   * logged. A refused request is not logged, so a client that keeps hammering does not push its
   * own reset further away.
   */
  async check(request: CheckRequest): Promise<Result<RateLimitDecision, RateLimitError>> {
    const parsed = CheckSchema.safeParse(request);
    if (!parsed.success) return err({ reason: "invalid_request", message: z.prettifyError(parsed.error) });
    const { identifier, routeClass, limit, windowS, now = Date.now() } = parsed.data;
    this.#cost.calls++;
    let decision: RateLimitDecision;
    try {
      decision = this.ctx.storage.transactionSync(() => this.#check(identifier, routeClass, { limit, windowS }, now));
    } catch (error) {
      return this.#storageFailed("check", identifier, error);
    }
    await this.#armSweep();
    return ok(decision);
  }

  /** The current window of `identifier` for every route class, under `rules`; counts nothing. */
  async peek(request: PeekRequest): Promise<Result<Record<RouteClass, WindowState>, RateLimitError>> {
    const parsed = PeekSchema.safeParse(request);
    if (!parsed.success) return err({ reason: "invalid_request", message: z.prettifyError(parsed.error) });
    const { identifier, rules, now = Date.now() } = parsed.data;
    this.#cost.calls++;
    try {
      return ok(
        this.ctx.storage.transactionSync(() => ({
          ingest: this.#peek(identifier, "ingest", rules.ingest, now),
          webhook: this.#peek(identifier, "webhook", rules.webhook, now),
          admin: this.#peek(identifier, "admin", rules.admin, now),
        })),
      );
    } catch (error) {
      return this.#storageFailed("peek", identifier, error);
    }
  }

  /** Forgets every counted request of `identifier` (all route classes). Returns how many. */
  async reset(identifier: string): Promise<Result<{ clearedHits: number }, RateLimitError>> {
    const parsed = RateLimitIdentifierSchema.safeParse(identifier);
    if (!parsed.success) return err({ reason: "invalid_request", message: z.prettifyError(parsed.error) });
    this.#cost.calls++;
    try {
      const clearedHits = this.ctx.storage.transactionSync(() => {
        const cleared = this.#exec("DELETE FROM hits WHERE identifier = ? RETURNING at", parsed.data).length;
        this.#exec("DELETE FROM keys WHERE identifier = ?", parsed.data);
        return cleared;
      });
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
   * Sweeps keys that went quiet: their hits would otherwise stay until the identifier came back,
   * since pruning happens per key as requests arrive.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const idle = this.#exec<Pick<KeyRow, "identifier" | "route_class">>(
      "SELECT identifier, route_class FROM keys WHERE idle_at <= ? ORDER BY idle_at LIMIT ?",
      now,
      IDLE_SWEEP_MAX_KEYS,
    );
    this.ctx.storage.transactionSync(() => {
      for (const key of idle) {
        this.#exec("DELETE FROM hits WHERE identifier = ? AND route_class = ?", key.identifier, key.route_class);
        this.#exec("DELETE FROM keys WHERE identifier = ? AND route_class = ?", key.identifier, key.route_class);
      }
    });
    this.#sweepArmed = false;
    if (idle.length === IDLE_SWEEP_MAX_KEYS) {
      await this.ctx.storage.setAlarm(now);
      this.#sweepArmed = true;
      return;
    }
    await this.#armSweep();
  }

  #check(identifier: string, routeClass: RouteClass, rule: Rule, now: number): RateLimitDecision {
    const windowMs = rule.windowS * 1_000;
    const used = this.#prune(identifier, routeClass, windowMs, now);
    const allowed = used < rule.limit;
    if (allowed) {
      this.#exec("INSERT INTO hits (identifier, route_class, at) VALUES (?, ?, ?)", identifier, routeClass, now);
      this.#exec(
        `INSERT INTO keys (identifier, route_class, used, idle_at) VALUES (?, ?, 1, ?)
         ON CONFLICT (identifier, route_class) DO UPDATE SET used = used + 1, idle_at = MAX(idle_at, excluded.idle_at)`,
        identifier,
        routeClass,
        now + windowMs,
      );
    }
    const counted = allowed ? used + 1 : used;
    return {
      allowed,
      limit: rule.limit,
      remaining: Math.max(0, rule.limit - counted),
      resetS: this.#secondsUntilFree(identifier, routeClass, 0, windowMs, now),
      // Refused with `used` ≥ limit: a retry succeeds once the (used − limit + 1)-th oldest hit has
      // left the window. `used` is above the limit only after the limit was lowered.
      retryAfterS: allowed
        ? 0
        : Math.max(1, this.#secondsUntilFree(identifier, routeClass, used - rule.limit, windowMs, now)),
    };
  }

  #peek(identifier: string, routeClass: RouteClass, rule: Rule, now: number): WindowState {
    const windowMs = rule.windowS * 1_000;
    const used = this.#prune(identifier, routeClass, windowMs, now);
    return {
      ...rule,
      used,
      remaining: Math.max(0, rule.limit - used),
      resetS: this.#secondsUntilFree(identifier, routeClass, 0, windowMs, now),
    };
  }

  /**
   * Deletes the key's hits that have left the window ending at `now` and returns how many are
   * left. `keys.used` is decreased by exactly the rows deleted, in the same transaction.
   */
  #prune(identifier: string, routeClass: RouteClass, windowMs: number, now: number): number {
    const row = this.#exec<Pick<KeyRow, "used">>(
      "SELECT used FROM keys WHERE identifier = ? AND route_class = ?",
      identifier,
      routeClass,
    )[0];
    if (!row) return 0;
    const expired = this.#exec(
      "DELETE FROM hits WHERE identifier = ? AND route_class = ? AND at <= ? RETURNING at",
      identifier,
      routeClass,
      now - windowMs,
    ).length;
    if (expired === 0) return row.used;
    const used = Math.max(0, row.used - expired);
    if (used === 0) {
      this.#exec("DELETE FROM keys WHERE identifier = ? AND route_class = ?", identifier, routeClass);
    } else {
      this.#exec("UPDATE keys SET used = ? WHERE identifier = ? AND route_class = ?", used, identifier, routeClass);
    }
    return used;
  }

  /** Seconds (rounded up) until the hit at position `offset` from the oldest leaves the window; 0 if none. */
  #secondsUntilFree(identifier: string, routeClass: RouteClass, offset: number, windowMs: number, now: number): number {
    const row = this.#exec<{ at: number }>(
      "SELECT at FROM hits WHERE identifier = ? AND route_class = ? ORDER BY at LIMIT 1 OFFSET ?",
      identifier,
      routeClass,
      offset,
    )[0];
    if (!row) return 0;
    return Math.max(0, Math.ceil((row.at + windowMs - now) / 1_000));
  }

  /** Arms the idle sweep unless it is armed already or there is nothing to sweep. */
  async #armSweep(): Promise<void> {
    if (this.#sweepArmed) return;
    if (this.#exec("SELECT 1 AS one FROM keys LIMIT 1").length === 0) return;
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
