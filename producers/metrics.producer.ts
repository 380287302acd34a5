import { counterShardName } from "../consumers/counters.consumer.ts";
import { type PipelineStats, pipelineStats } from "../consumers/stats.ts";
import { telemetryShardName } from "../consumers/telemetry.consumer.ts";
import { config } from "../lib/config.ts";
import { type D1Stats, newD1Stats } from "../lib/d1.ts";
import { authenticate } from "./auth.ts";
import { RATE_LIMIT_SHARD_COUNT, rateLimitShardNameAt } from "./rate-limit.ts";
import { ok } from "./responses.ts";

function addD1(total: D1Stats, more: D1Stats): void {
  total.roundTrips += more.roundTrips;
  total.statements += more.statements;
  total.rowsWritten += more.rowsWritten;
}

function sumOf<T>(items: readonly T[], pick: (item: T) => number): number {
  return items.reduce((sum, item) => sum + pick(item), 0);
}

/** The consumer's counters plus the shards' D1 accounting, in the API's snake_case. */
function summarise(consumer: PipelineStats, shardD1: D1Stats, shardAlarms: number) {
  const d1 = newD1Stats();
  addD1(d1, consumer.d1);
  addD1(d1, shardD1);
  return {
    shard_rpcs: consumer.shardRpcs,
    shard_alarms: shardAlarms,
    d1: { round_trips: d1.roundTrips, statements: d1.statements, rows_written: d1.rowsWritten },
  };
}

/**
 * `GET /v1/admin/metrics` (admin): pipeline counters since the isolate started, with every
 * telemetry and counter shard's buffer and D1 accounting. The demo and the benchmark read it to
 * report D1 round trips and Durable Object requests per 1,000 events.
 */
export async function getMetrics(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "admin");
  const shardCount = config(env).SHARD_COUNT;
  const indexes = Array.from({ length: shardCount }, (_, index) => index);
  const [events, counters, limiter] = await Promise.all([
    Promise.all(indexes.map((i) => env.RUNTIME_EVENT_SHARD.getByName(telemetryShardName(i)).status())),
    Promise.all(indexes.map((i) => env.COUNTER_SHARD.getByName(counterShardName(i)).status())),
    // The limiter's own shards (a fixed count): what rate limiting costs, per check.
    Promise.all(
      Array.from({ length: RATE_LIMIT_SHARD_COUNT }, (_, i) =>
        env.RATE_LIMIT_SHARD.getByName(rateLimitShardNameAt(i)).cost(),
      ),
    ),
  ]);
  const eventsD1 = newD1Stats();
  const countersD1 = newD1Stats();
  events.forEach((status) => addD1(eventsD1, status.d1));
  counters.forEach((status) => addD1(countersD1, status.d1));
  return ok({
    telemetry: {
      shard_count: shardCount,
      buffered: events.reduce((sum, status) => sum + status.buffered, 0),
      flush_failures: events.reduce((sum, status) => sum + status.flushFailures, 0),
      ...summarise(
        pipelineStats.telemetry,
        eventsD1,
        sumOf(events, (status) => status.alarms),
      ),
    },
    counters: {
      shard_count: shardCount,
      held: counters.reduce((sum, status) => sum + status.pending + status.inflight, 0),
      flush_failures: counters.reduce((sum, status) => sum + status.flushFailures, 0),
      ...summarise(
        pipelineStats.counters,
        countersD1,
        sumOf(counters, (status) => status.alarms),
      ),
    },
    rate_limits: {
      checks: limiter.reduce((sum, cost) => sum + cost.calls, 0),
      rows_read: limiter.reduce((sum, cost) => sum + cost.rowsRead, 0),
      rows_written: limiter.reduce((sum, cost) => sum + cost.rowsWritten, 0),
    },
  });
}
