import { z } from "zod";

/**
 * Rate limiting: the route classes that `RATE_LIMITS` configures, and the on-call view of one
 * identifier's windows (`GET /v1/admin/rate-limits/:identifier`).
 */
export const RouteClassSchema = z.enum(["ingest", "webhook", "admin"]);
export type RouteClass = z.infer<typeof RouteClassSchema>;

/** `key:<16 hex>` (ingest key), `admin:<16 hex>` (admin token) or `ip:<address>` (no credential). */
export const RateLimitIdentifierSchema = z.string().min(1).max(256);

export const RateLimitParamsSchema = z.object({ identifier: RateLimitIdentifierSchema });

export const RateLimitWindowSchema = z.object({
  limit: z.number().int().positive().describe("requests allowed per window"),
  window_s: z.number().int().positive().describe("window length, seconds"),
  used: z
    .number()
    .int()
    .nonnegative()
    .describe(
      "requests in the sliding window ending now, estimated from the two fixed windows (previous × share of it still inside + current), rounded up",
    ),
  remaining: z.number().int().nonnegative(),
  reset_s: z
    .number()
    .int()
    .nonnegative()
    .describe("seconds until the current fixed window ends and its count starts to age out; 0 when nothing is counted"),
  current_window: z
    .number()
    .int()
    .nonnegative()
    .describe("requests allowed in the current fixed window, every isolate"),
  previous_window: z.number().int().nonnegative().describe("requests allowed in the fixed window before it"),
});
export type RateLimitWindow = z.infer<typeof RateLimitWindowSchema>;

export const RateLimitStatusSchema = z.object({
  identifier: RateLimitIdentifierSchema,
  shard: z.string().describe("the RateLimitShard holding this identifier"),
  classes: z.object({
    ingest: RateLimitWindowSchema,
    webhook: RateLimitWindowSchema,
    admin: RateLimitWindowSchema,
  }),
});

export const RateLimitResetSchema = z.object({
  identifier: RateLimitIdentifierSchema,
  shard: z.string(),
  cleared_hits: z.number().int().nonnegative().describe("requests removed from the shard's window counts"),
  cleared_fallback_windows: z
    .number()
    .int()
    .nonnegative()
    .nullable()
    .describe("D1 fallback windows removed; null when D1 could not be reached"),
});
