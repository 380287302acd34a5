import { type Rule, rateLimitShardName } from "../durable/rate-limit-shard.do.ts";
import { audit } from "../lib/audit.d1.ts";
import { type RateLimit, config } from "../lib/config.ts";
import { assertNever } from "../lib/result.ts";
import { RateLimitParamsSchema, type RouteClass } from "../schemas/rate-limit.schema.ts";
import type { Principal } from "./auth.ts";
import { BadRequest, type HttpError, ServiceUnavailable } from "./errors.ts";
import { pathParams } from "./http.ts";
import { type ShardFailure, callRateLimitShard, isolateLimiter, resetRateLimitFallbacks } from "./rate-limiter.ts";
import { ok } from "./responses.ts";

function toRule(limit: RateLimit): Rule {
  return { limit: limit.limit, windowS: limit.window_s };
}

/** A shard that cannot answer an on-call request: 503 (on-call must know nothing was read or reset). */
function shardFailure(identifier: string, failure: ShardFailure): HttpError {
  switch (failure.reason) {
    case "unavailable":
    case "overloaded":
    case "storage_failed":
      return new ServiceUnavailable(
        "rate_limit_shard_unavailable",
        `the rate-limit shard ${rateLimitShardName(identifier)} could not answer: ${failure.message}`,
        5,
      );
    case "invalid_request":
      return new BadRequest("invalid_identifier", failure.message);
    default:
      return assertNever(failure);
  }
}

/**
 * `GET /v1/admin/rate-limits/:identifier` (admin): the identifier's current window for every route
 * class under the configured `RATE_LIMITS`. Reading it counts no request. This isolate's counts
 * are sent to the shard first; other isolates' arrive within one sync interval
 * (`SYNC_INTERVAL_MS`), so the view can be that far behind.
 */
export async function getRateLimits(request: Request, env: Env): Promise<Response> {
  const { identifier } = pathParams(request, RateLimitParamsSchema);
  const limits = config(env).RATE_LIMITS;
  // A failed flush shows as the peek's own failure just below (same shard).
  await isolateLimiter.flush(env, identifier);
  const result = await callRateLimitShard(env, identifier, (shard) =>
    shard.peek({
      identifier,
      rules: { ingest: toRule(limits.ingest), webhook: toRule(limits.webhook), admin: toRule(limits.admin) },
    }),
  );
  if (!result.ok) throw shardFailure(identifier, result.error);
  const window = (routeClass: RouteClass) => {
    const state = result.value[routeClass];
    return {
      limit: state.limit,
      window_s: state.windowS,
      used: state.used,
      remaining: state.remaining,
      reset_s: state.resetS,
      current_window: state.current,
      previous_window: state.previous,
    };
  };
  return ok({
    identifier,
    shard: rateLimitShardName(identifier),
    classes: { ingest: window("ingest"), webhook: window("webhook"), admin: window("admin") },
  });
}

/**
 * `POST /v1/admin/rate-limits/:identifier/reset` (admin): forgets every request counted for the
 * identifier in its shard, and in the D1 fallback and this isolate's memory (best effort: other
 * isolates' fallback memory ages out within one window).
 */
export async function resetRateLimits(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { identifier } = pathParams(request, RateLimitParamsSchema);
  const result = await callRateLimitShard(env, identifier, (shard) => shard.reset(identifier));
  if (!result.ok) throw shardFailure(identifier, result.error);
  const clearedFallbackWindows = await resetRateLimitFallbacks(env, identifier);
  await audit(env.DB, {
    type: "admin.action",
    actor: principal.id,
    details: { action: "rate_limit.reset", identifier, cleared_hits: result.value.clearedHits },
  });
  return ok({
    identifier,
    shard: rateLimitShardName(identifier),
    cleared_hits: result.value.clearedHits,
    cleared_fallback_windows: clearedFallbackWindows,
  });
}
