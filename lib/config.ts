import { z } from "zod";

/**
 * Typed view of the plain-text vars in wrangler.toml. Vars arrive as strings (and can be overridden
 * per run with `wrangler dev --var NAME:value`), so they are parsed here, once, with defaults.
 * A malformed value fails loudly at first use instead of silently picking a default.
 */
export const ModeSchema = z.enum(["primary", "shadow", "off"]);
export type Mode = z.infer<typeof ModeSchema>;
/**
 * Telemetry has one more mode than counters: `batch` (one `db.batch` per queue batch, no Durable
 * Objects), the benchmark's middle arm between `off` and the shards.
 */
export const RuntimeEventModeSchema = z.enum([...ModeSchema.options, "batch"]);
export type RuntimeEventMode = z.infer<typeof RuntimeEventModeSchema>;

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const RateLimitSchema = z.object({
  // The exact sliding log keeps one row per allowed request in the window: RateLimitShard refuses
  // more than 1,000,000, so a larger limit must fail here, loudly, rather than silently route
  // every check to the D1 fallback.
  limit: z.number().int().positive().max(1_000_000),
  window_s: z.number().int().positive(),
});
export type RateLimit = z.infer<typeof RateLimitSchema>;

export const DEFAULT_RATE_LIMITS = {
  ingest: { limit: 600, window_s: 60 },
  webhook: { limit: 60, window_s: 60 },
  admin: { limit: 300, window_s: 60 },
  // Failed authentications (401s) per source, counted apart from requests: over it, the source's
  // every request is 429 before any credential is compared (producers/auth-failures.ts).
  auth_failures: { limit: 30, window_s: 60 },
} as const satisfies Record<string, RateLimit>;

const RateLimitsSchema = z
  .object({
    ingest: RateLimitSchema.default(DEFAULT_RATE_LIMITS.ingest),
    webhook: RateLimitSchema.default(DEFAULT_RATE_LIMITS.webhook),
    admin: RateLimitSchema.default(DEFAULT_RATE_LIMITS.admin),
    auth_failures: RateLimitSchema.default(DEFAULT_RATE_LIMITS.auth_failures),
  })
  .default(DEFAULT_RATE_LIMITS);

const ConfigSchema = z.object({
  RUNTIME_EVENT_DO_MODE: RuntimeEventModeSchema.default("primary"),
  COUNTER_DO_MODE: ModeSchema.default("primary"),
  SHARD_COUNT: z.coerce.number().int().min(1).max(1024).default(32),
  RATE_LIMITS: z
    .string()
    .optional()
    .transform((raw) => (raw ? (JSON.parse(raw) as unknown) : undefined))
    .pipe(RateLimitsSchema),
  ENFORCEMENT_THRESHOLD_MS: positiveInt(28_800_000),
  EVENT_RETENTION_DAYS: positiveInt(30),
  FLUSH_DELAY_MS: positiveInt(5_000),
  // Tenants are also served at `<project>.<suffix>` (producers/tenant.producer.ts).
  TENANT_HOST_SUFFIX: z
    .string()
    .regex(/^[a-z0-9-]+(\.[a-z0-9-]+)*$/i, "a hostname such as localhost or tenants.example.com")
    .default("localhost"),
});
export type Config = z.infer<typeof ConfigSchema>;

const cache = new WeakMap<object, Config>();

/** Parses (and memoises per env object) the configuration vars. */
export function config(env: Partial<Record<keyof Config, unknown>>): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const parsed = ConfigSchema.safeParse({
    RUNTIME_EVENT_DO_MODE: env.RUNTIME_EVENT_DO_MODE || undefined,
    COUNTER_DO_MODE: env.COUNTER_DO_MODE || undefined,
    SHARD_COUNT: env.SHARD_COUNT || undefined,
    RATE_LIMITS: env.RATE_LIMITS || undefined,
    ENFORCEMENT_THRESHOLD_MS: env.ENFORCEMENT_THRESHOLD_MS || undefined,
    EVENT_RETENTION_DAYS: env.EVENT_RETENTION_DAYS || undefined,
    FLUSH_DELAY_MS: env.FLUSH_DELAY_MS || undefined,
    TENANT_HOST_SUFFIX: env.TENANT_HOST_SUFFIX || undefined,
  });
  if (!parsed.success) {
    throw new Error(`invalid configuration: ${z.prettifyError(parsed.error)}`);
  }
  cache.set(env, parsed.data);
  return parsed.data;
}
