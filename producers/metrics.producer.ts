import { counterShard } from "../durable/counter-shard.do.ts";
import { type PipelineStats, pipelineStats } from "../lib/pipeline-stats.ts";
import { telemetryShard } from "../durable/runtime-event-shard.do.ts";
import { config } from "../lib/config.ts";
import { type D1Stats, newD1Stats } from "../lib/d1.ts";
import { RATE_LIMIT_SHARD_COUNT, rateLimitShardNameAt } from "../durable/rate-limit-shard.do.ts";
import { isolateLimiter } from "./rate-limiter.ts";
import { telemetrySends } from "./events.producer.ts";
import { ok } from "./responses.ts";

function addD1(total: D1Stats, more: D1Stats): void {
  total.roundTrips += more.roundTrips;
  total.statements += more.statements;
  total.rowsWritten += more.rowsWritten;
}

function sumOf<T>(items: readonly T[], pick: (item: T) => number): number {
  return items.reduce((sum, item) => sum + pick(item), 0);
}

/** What every buffering shard's `status()` reports that the metrics sum. */
type ShardFigures = { flushFailures: number; alarms: number; d1: D1Stats };

/** A pipeline's consumer counters plus its shards' flush, alarm and D1 accounting, in snake_case. */
function summarise(consumer: PipelineStats, shards: readonly ShardFigures[]) {
  const d1 = newD1Stats();
  addD1(d1, consumer.d1);
  for (const shard of shards) addD1(d1, shard.d1);
  return {
    flush_failures: sumOf(shards, (shard) => shard.flushFailures),
    shard_rpcs: consumer.shardRpcs,
    shard_alarms: sumOf(shards, (shard) => shard.alarms),
    d1: { round_trips: d1.roundTrips, statements: d1.statements, rows_written: d1.rowsWritten },
  };
}

/**
 * `GET /v1/admin/metrics` (admin): pipeline counters since the isolate started, with every
 * telemetry and counter shard's buffer and D1 accounting. The demo and the benchmark read it to
 * report D1 round trips and Durable Object requests per 1,000 events.
 */
export async function getMetrics(request: Request, env: Env): Promise<Response> {
  const shardCount = config(env).SHARD_COUNT;
  const indexes = Array.from({ length: shardCount }, (_, index) => index);
  const [events, counters, limiter] = await Promise.all([
    Promise.all(indexes.map((i) => telemetryShard(env, i).status())),
    Promise.all(indexes.map((i) => counterShard(env, i).status())),
    // The limiter's own shards (a fixed count): what rate limiting costs, per check.
    Promise.all(
      Array.from({ length: RATE_LIMIT_SHARD_COUNT }, (_, i) =>
        env.RATE_LIMIT_SHARD.getByName(rateLimitShardNameAt(i)).cost(),
      ),
    ),
  ]);
  return ok({
    telemetry: {
      shard_count: shardCount,
      buffered: sumOf(events, (status) => status.buffered),
      buffered_by_shard: events.map((status) => status.buffered),
      ...summarise(pipelineStats.telemetry, events),
      ingest: {
        requests: telemetrySends.stats.requests,
        sends: telemetrySends.stats.sends,
        messages: telemetrySends.stats.messages,
        send_failures: telemetrySends.stats.failures,
      },
    },
    counters: {
      shard_count: shardCount,
      held: sumOf(counters, (status) => status.pending + status.inflight),
      held_by_shard: counters.map((status) => status.pending + status.inflight),
      ...summarise(pipelineStats.counters, counters),
    },
    rate_limits: {
      checks: sumOf(limiter, (cost) => cost.calls),
      rows_read: sumOf(limiter, (cost) => cost.rowsRead),
      rows_written: sumOf(limiter, (cost) => cost.rowsWritten),
      decisions: isolateLimiter.stats.decisions,
      syncs: isolateLimiter.stats.syncs,
    },
  });
}
