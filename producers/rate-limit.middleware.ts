import { type RateLimitDecision, checkRateLimit } from "./rate-limiter.ts";
import type { RouteClass } from "../schemas/rate-limit.schema.ts";
import { TooManyRequests, toErrorResponse } from "./errors.ts";

/**
 * The HTTP side of rate limiting: the `X-RateLimit-*` headers and the wrapper the router runs handlers of routes with `rateLimit` in. The limiter
 * itself (shard, D1 and memory fallbacks) is producers/rate-limiter.ts.
 */

/** The response headers of a rate-limited route. `X-RateLimit-Reset` is in seconds from now. */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  return {
    "X-RateLimit-Limit": String(decision.limit),
    "X-RateLimit-Remaining": String(decision.remaining),
    "X-RateLimit-Reset": String(decision.resetS),
  };
}

/**
 * Counts one request of `identifier` against its route class's limit (routes opt in with
 * `rateLimit` in the route table; the router calls this after authenticating, so 401/403 carry no
 * rate-limit headers: there is no identity to count yet), then runs the handler. Every answer after
 * that carries the headers, errors included, so a client sees its budget whether or not its request
 * was valid; invalid requests count too, which is what protects the edge from floods of them.
 */
export async function withRateLimit(
  env: Env,
  ctx: ExecutionContext,
  routeClass: RouteClass,
  identifier: string,
  request: Request,
  handler: () => Promise<Response> | Response,
): Promise<Response> {
  // A sync the decision does not wait for is kept alive past the response by the request's
  // context; the response never waits for it (it carries counts, not the request's data).
  const decision = await checkRateLimit(env, identifier, routeClass, { waitUntil: (p) => ctx.waitUntil(p) });
  const headers = rateLimitHeaders(decision);
  // Refused before the handler runs, so nothing is read, validated or enqueued.
  if (!decision.allowed) throw new TooManyRequests(decision.retryAfterS, headers);
  let response: Response;
  try {
    response = await handler();
  } catch (error) {
    // The same mapper the router's `catch` uses, called here so the error answer can carry the
    // headers too.
    response = toErrorResponse(error, request);
  }
  const withHeaders = new Response(response.body, response);
  for (const [name, value] of Object.entries(headers)) withHeaders.headers.set(name, value);
  return withHeaders;
}
