import { z } from "zod";
import { config } from "../lib/config.ts";

/** Durable Object usage of one project over a window. */
export interface ProjectUsage {
  wallMs: number;
  invocations: number;
}

/** Usage as read now, with how fresh it is. */
export interface UsageReading extends ProjectUsage {
  /** When the figure was read (epoch ms). */
  asOf: number;
  /**
   * Where it comes from: stored `do_usage` events in D1, measured by the host object locally and
   * from the runtime's trace items in production.
   */
  source: "runtime_events";
  /**
   * How far behind the invocations it may be, in ms: the telemetry queue's batch wait plus the
   * shards' flush delay (invocations stored so far are all in), plus the tail delivery in production.
   */
  lagMs: number;
}

/**
 * The UsageSource port: "Durable Object wall time per project over the last 24 h". On both
 * platforms usage travels through the telemetry pipeline as `do_usage` events, measured where the
 * tenant cannot reach (the host object locally, trace items in production: platform/tail-usage.ts),
 * and is rolled up hourly in D1.
 */
export interface UsageSource {
  /** Usage per project (projects with no usage are absent) over `windowMs` up to `now`. */
  usageByProject(windowMs: number, now: number): Promise<Map<string, ProjectUsage>>;
  /** Usage of one project. */
  usageOf(projectId: string, windowMs: number, now: number): Promise<ProjectUsage>;
  /**
   * Usage of one project including invocations not yet rolled up (`GET /v1/projects/:id/do-usage`),
   * where `usageOf` may trail by one enforcement cycle.
   */
  currentUsageOf(projectId: string, windowMs: number, now: number): Promise<UsageReading>;
}

export const HOUR_MS = 3_600_000;
/** wrangler.toml's `max_batch_timeout` of the telemetry queue, in ms. */
const TELEMETRY_BATCH_WAIT_MS = 1_000;
/**
 * How long after an invocation ends its trace item may reach the tail handler in production (a
 * bound for `lagMs`, not a measured figure: Cloudflare documents no delivery deadline).
 */
const TAIL_DELIVERY_MS = 10_000;
/** How many recent hours a refresh recomputes: the current one and the one before (late events). */
export const REFRESH_HOURS = 2;
/**
 * How far ahead of the reader's clock a stored `do_usage` event may be and still count (clock skew
 * between the gateway and the reader). Events further ahead are not counted: a year-2100 `ts`
 * would otherwise sit in every 24 h window until then. Negative wall times count as 0. The public
 * ingest API refuses `do_usage` altogether; these guards hold for any other way an event got in
 * (the on-call queue tool, a redrive).
 */
export const USAGE_MAX_FUTURE_MS = 5 * 60_000;
/** One event's wall time as counted: never negative. */
const EVENT_WALL_MS = "MAX(0, COALESCE(json_extract(data, '$.wall_ms'), 0))";

const UsageRowSchema = z.object({
  project_id: z.string(),
  wall_ms: z.coerce.number(),
  invocations: z.coerce.number(),
});

/**
 * D1 hourly rollups (`do_usage_hourly`). `refresh` recomputes the recent hours from
 * `runtime_events` (type `do_usage`) with one `INSERT … SELECT … GROUP BY` — a recompute, not an
 * increment, so any number of refreshes give the same rows. The window is counted in whole hours
 * (the hour containing `now - windowMs` onwards), a deliberate over-count of at most one hour.
 */
export class D1UsageSource implements UsageSource {
  readonly #db: D1Database;

  readonly #lagMs: number;

  /** `lagMs`: how long an invocation may take from the tenant to D1 (queue batch wait + flush delay). */
  constructor(db: D1Database, lagMs = 0) {
    this.#db = db;
    this.#lagMs = lagMs;
  }

  /** Recomputes the last `hours` hourly buckets; returns how many rows were written. */
  async refresh(now: number, hours: number = REFRESH_HOURS): Promise<number> {
    const from = Math.floor(now / HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS;
    const result = await this.#db
      .prepare(
        `INSERT INTO do_usage_hourly (project_id, hour, wall_ms, invocations, errors, refreshed_at)
         SELECT project_id, (ts / ${HOUR_MS}) * ${HOUR_MS} AS hour,
                SUM(${EVENT_WALL_MS}), COUNT(*),
                SUM(json_extract(data, '$.outcome') = 'error'), ?2
         FROM runtime_events WHERE type = 'do_usage' AND ts >= ?1 AND ts <= ?3
         GROUP BY project_id, hour
         ON CONFLICT(project_id, hour) DO UPDATE SET wall_ms = excluded.wall_ms,
           invocations = excluded.invocations, errors = excluded.errors, refreshed_at = excluded.refreshed_at`,
      )
      .bind(from, now, now + USAGE_MAX_FUTURE_MS)
      .run();
    return result.meta.changes;
  }

  async usageByProject(windowMs: number, now: number): Promise<Map<string, ProjectUsage>> {
    const { results } = await this.#db
      .prepare(
        `SELECT project_id, SUM(wall_ms) AS wall_ms, SUM(invocations) AS invocations
         FROM do_usage_hourly WHERE hour >= ? GROUP BY project_id`,
      )
      .bind(windowStart(windowMs, now))
      .all();
    return toMap(results);
  }

  async usageOf(projectId: string, windowMs: number, now: number): Promise<ProjectUsage> {
    const row = await this.#db
      .prepare(
        `SELECT ? AS project_id, COALESCE(SUM(wall_ms), 0) AS wall_ms, COALESCE(SUM(invocations), 0) AS invocations
         FROM do_usage_hourly WHERE project_id = ? AND hour >= ?`,
      )
      .bind(projectId, projectId, windowStart(windowMs, now))
      .first();
    const parsed = UsageRowSchema.safeParse(row);
    return parsed.success
      ? { wallMs: parsed.data.wall_ms, invocations: parsed.data.invocations }
      : { wallMs: 0, invocations: 0 };
  }

  /**
   * Rollups for the hours a refresh no longer touches, plus the stored `do_usage` events of the
   * recent hours (the ones a refresh recomputes), so nothing is counted twice and nothing waits for
   * the next enforcement cycle.
   */
  async currentUsageOf(projectId: string, windowMs: number, now: number): Promise<UsageReading> {
    const recent = Math.floor(now / HOUR_MS) * HOUR_MS - (REFRESH_HOURS - 1) * HOUR_MS;
    const row = await this.#db
      .prepare(
        `SELECT ?1 AS project_id,
           (SELECT COALESCE(SUM(wall_ms), 0) FROM do_usage_hourly WHERE project_id = ?1 AND hour >= ?2 AND hour < ?3)
             + (SELECT COALESCE(SUM(${EVENT_WALL_MS}), 0) FROM runtime_events
                WHERE type = 'do_usage' AND project_id = ?1 AND ts >= MAX(?2, ?3) AND ts <= ?4) AS wall_ms,
           (SELECT COALESCE(SUM(invocations), 0) FROM do_usage_hourly WHERE project_id = ?1 AND hour >= ?2 AND hour < ?3)
             + (SELECT COUNT(*) FROM runtime_events
                WHERE type = 'do_usage' AND project_id = ?1 AND ts >= MAX(?2, ?3) AND ts <= ?4) AS invocations`,
      )
      .bind(projectId, windowStart(windowMs, now), recent, now + USAGE_MAX_FUTURE_MS)
      .first();
    const parsed = UsageRowSchema.parse(row);
    return {
      wallMs: parsed.wall_ms,
      invocations: parsed.invocations,
      asOf: now,
      source: "runtime_events",
      lagMs: this.#lagMs,
    };
  }
}

function windowStart(windowMs: number, now: number): number {
  return Math.floor((now - windowMs) / HOUR_MS) * HOUR_MS;
}

function toMap(rows: readonly unknown[]): Map<string, ProjectUsage> {
  const usage = new Map<string, ProjectUsage>();
  for (const row of rows) {
    const parsed = UsageRowSchema.safeParse(row);
    if (parsed.success)
      usage.set(parsed.data.project_id, { wallMs: parsed.data.wall_ms, invocations: parsed.data.invocations });
  }
  return usage;
}

/**
 * The UsageSource of this deployment: D1 rollups of the `do_usage` events, on both platforms. An
 * invocation's event waits at most one telemetry batch (max_batch_timeout, 1 s) and one shard
 * flush delay before it is a row in D1; in production its trace item first reaches Shipyard's
 * tail handler, which Cloudflare delivers within seconds of the invocation's end.
 */
export function usageSource(env: Env): UsageSource {
  const tailDelivery = env.SCRIPT_HOST === "cloudflare" ? TAIL_DELIVERY_MS : 0;
  return new D1UsageSource(env.DB, tailDelivery + TELEMETRY_BATCH_WAIT_MS + config(env).FLUSH_DELAY_MS);
}
