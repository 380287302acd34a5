import { type RateLimitDecision, checkRateLimit } from "../lib/rate-limiter.ts";
import type { RouteClass } from "../schemas/rate-limit.schema.ts";
import { type CredentialKind, authenticate } from "./auth.ts";
import { TooManyRequests, toErrorResponse } from "./errors.ts";
import type { Handler } from "./routes.ts";

/**
 * The HTTP side of rate limiting: which identity a request is counted by, the `X-RateLimit-*`
 * headers, and the handler wrapper the router puts around routes with `rateLimit`. The limiter
 * itself (shard, D1 and memory fallbacks) is lib/rate-limiter.ts.
 */

/**
 * The client address, for routes without a credential to count by (the deploy webhook). Requests
 * without `CF-Connecting-IP` (only possible off Cloudflare's edge, e.g. locally) share "unknown".
 */
export function clientIp(request: Request): string {
  return request.headers.get("CF-Connecting-IP")?.trim() || "unknown";
}

/** The response headers of a rate-limited route. `X-RateLimit-Reset` is in seconds from now. */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  return {
    "X-RateLimit-Limit": String(decision.limit),
    "X-RateLimit-Remaining": String(decision.remaining),
    "X-RateLimit-Reset": String(decision.resetS),
  };
}

/**
 * Wraps a route's handler with its class's limit (routes opt in with `rateLimit` in the route
 * table; the router applies this). Order: authenticate (401/403 carry no rate-limit headers: there
 * is no identity to count yet), count, then run the handler. Every answer after that carries the
 * headers, errors included, so a client sees its budget whether or not its request was valid;
 * invalid requests count too, which is what protects the edge from floods of them.
 */
export function withRateLimit(routeClass: RouteClass, auth: CredentialKind | "none", handler: Handler): Handler {
  return async (request, env, ctx) => {
    const identifier = auth === "none" ? `ip:${clientIp(request)}` : (await authenticate(request, env, auth)).id;
    // A sync the decision does not wait for is kept alive past the response by the request's
    // context; the response never waits for it (it carries counts, not the request's data).
    const decision = await checkRateLimit(env, identifier, routeClass, { waitUntil: (p) => ctx.waitUntil(p) });
    const headers = rateLimitHeaders(decision);
    // Refused before the handler runs, so nothing is read, validated or enqueued.
    if (!decision.allowed) throw new TooManyRequests(decision.retryAfterS, headers);
    let response: Response;
    try {
      response = await handler(request, env, ctx);
    } catch (error) {
      // The same mapper the router's `catch` uses, called here so the error answer can carry the
      // headers too.
      response = toErrorResponse(error, request);
    }
    const withHeaders = new Response(response.body, response);
    for (const [name, value] of Object.entries(headers)) withHeaders.headers.set(name, value);
    return withHeaders;
  };
}
