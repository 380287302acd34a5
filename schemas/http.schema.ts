import { z } from "zod";

/** The contract's error body. */
export const ErrorSchema = z.object({
  error: z.object({
    code: z.string().describe("snake_case error code"),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});

export const AcceptedSchema = z.object({ accepted: z.number().int().nonnegative() });

export const HealthSchema = z.looseObject({
  ok: z.literal(true),
  service: z.string(),
  modes: z.object({ runtime_events: z.string(), counters: z.string() }),
  shard_count: z.number().int(),
});

const D1MetricsSchema = z.object({
  round_trips: z.number().int(),
  statements: z.number().int(),
  rows_written: z.number().int(),
});

export const MetricsSchema = z.object({
  telemetry: z.object({
    shard_count: z.number().int(),
    buffered: z.number().int().describe("rows held in shards, not yet in D1"),
    buffered_by_shard: z.array(z.number().int()).describe("buffered rows of each shard, by shard index"),
    flush_failures: z.number().int().describe("consecutive failed flushes, summed over shards"),
    shard_rpcs: z.number().int(),
    shard_alarms: z
      .number()
      .int()
      .describe("alarm invocations of the shards (with shard_rpcs: Durable Object requests)"),
    d1: D1MetricsSchema,
    ingest: z
      .object({
        requests: z.number().int().describe("POST /v1/events requests this isolate sent to the queue"),
        sends: z.number().int().describe("queue sends that carried them (concurrent small requests share one)"),
        messages: z.number().int().describe("queue messages those sends carried"),
        send_failures: z.number().int().describe("sends that failed (each fails every request it carried)"),
      })
      .describe("this isolate's ingest sends (lib/send-coalescer.ts)"),
  }),
  rate_limits: z.object({
    checks: z
      .number()
      .int()
      .describe("calls the limiter's shards answered (batched syncs and on-call reads) since they started"),
    rows_read: z.number().int(),
    rows_written: z.number().int(),
    decisions: z.number().int().describe("rate-limit decisions (one per rate-limited request) by this isolate"),
    syncs: z.number().int().describe("syncs this isolate sent to the limiter's shards (each carries many decisions)"),
  }),
  counters: z.object({
    shard_count: z.number().int(),
    held: z.number().int().describe("increments held in shards, not yet in D1"),
    held_by_shard: z.array(z.number().int()).describe("held increments of each shard, by shard index"),
    flush_failures: z.number().int(),
    shard_rpcs: z.number().int(),
    shard_alarms: z.number().int(),
    d1: D1MetricsSchema,
  }),
});
