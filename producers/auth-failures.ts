/**
 * Failed authentication is rate limited per source. Every 401 (the router's `authenticate`, the
 * deploy webhook's signature check) counts one failure of the request's source
 * (producers/client-address.ts) against `RATE_LIMITS.auth_failures` (default 30 per 60 s); once a
 * source has used its budget, each of its requests is 429 with `Retry-After` before any credential
 * is compared, so guessing an admin token or a webhook secret costs a window per 30 guesses.
 *
 * Failures are counted where requests are: the source's window in its `RateLimitShard` (under the
 * identifier `auth-failures:<source>`), so the budget holds across isolates. The refusal is decided
 * from this isolate's memory of the sources the shard already found over budget, so a request pays
 * nothing for the check, and only a failure pays a shard call; another isolate lets at most one
 * more failure through before it learns the same.
 */
import { config } from "../lib/config.ts";
import { log } from "../lib/log.ts";
import { HttpError, Unauthorized } from "./errors.ts";
import { checkRateLimit } from "./rate-limiter.ts";

/** Sources this isolate refuses until the epoch ms given (bounded: oldest first out). */
const blockedUntil = new Map<string, number>();
const MAX_BLOCKED_SOURCES = 10_000;

/** The identifier a source's failures are counted under in its rate-limit shard. */
export function authFailureIdentifier(source: string): string {
  return `auth-failures:${source}`;
}

/** 429 for a source over its failed-authentication budget. */
export class TooManyAuthFailures extends HttpError {
  constructor(retryAfterS: number) {
    super(
      429,
      "too_many_auth_failures",
      `too many failed authentications from this address; retry in ${retryAfterS} s`,
      undefined,
      { "Retry-After": String(retryAfterS) },
    );
  }
}

/** Seconds until `source` may try again, or 0 when it is not refused. */
function refusedFor(source: string, now: number): number {
  const until = blockedUntil.get(source);
  if (until === undefined) return 0;
  if (until <= now) {
    blockedUntil.delete(source);
    return 0;
  }
  return Math.max(1, Math.ceil((until - now) / 1000));
}

/** Counts one failed authentication of `source`; remembers it as refused once its budget is used. */
async function recordFailure(env: Env, source: string): Promise<void> {
  const rule = config(env).RATE_LIMITS.auth_failures;
  // The shard keys windows by (identifier, class); the identifier alone keeps these apart from
  // the source's requests, and "webhook" is the class of credential-less routes it sits with.
  const decision = await checkRateLimit(env, authFailureIdentifier(source), "webhook", { rule });
  if (decision.allowed && decision.remaining > 0) return;
  const retryAfterS = Math.max(1, decision.allowed ? decision.resetS : decision.retryAfterS);
  if (!blockedUntil.has(source)) log.warn("auth_failures_limited", { source, retry_after_s: retryAfterS });
  blockedUntil.delete(source);
  blockedUntil.set(source, Date.now() + retryAfterS * 1000);
  const oldest = blockedUntil.keys().next();
  if (blockedUntil.size > MAX_BLOCKED_SOURCES && !oldest.done) blockedUntil.delete(oldest.value);
}

/**
 * Runs an authenticated endpoint for `source`: refused (429) while the source is over its
 * failed-authentication budget, and every 401 it answers (thrown or returned) counted.
 */
export async function withAuthFailureLimit(
  env: Env,
  source: string,
  run: () => Promise<Response> | Response,
): Promise<Response> {
  const wait = refusedFor(source, Date.now());
  if (wait > 0) throw new TooManyAuthFailures(wait);
  let response: Response;
  try {
    response = await run();
  } catch (error) {
    if (error instanceof Unauthorized) await recordFailure(env, source);
    throw error;
  }
  if (response.status === 401) await recordFailure(env, source);
  return response;
}
