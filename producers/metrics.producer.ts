import { config } from "../lib/config.ts";
import { newD1Stats } from "../lib/d1.ts";
import { pipelineStats } from "../consumers/stats.ts";
import { telemetryShardName } from "../consumers/telemetry.consumer.ts";
import { authenticate } from "./auth.ts";
import { ok } from "./responses.ts";

/**
 * `GET /v1/admin/metrics` (admin): pipeline counters since the isolate started, with every
 * telemetry shard's buffer and D1 accounting. The demo and the benchmark read it to report
 * D1 round trips and Durable Object requests per 1,000 events.
 */
export async function getMetrics(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "admin");
  const shardCount = config(env).SHARD_COUNT;
  const statuses = await Promise.all(
    Array.from({ length: shardCount }, (_, index) =>
      env.RUNTIME_EVENT_SHARD.getByName(telemetryShardName(index)).status(),
    ),
  );
  const shardsD1 = newD1Stats();
  let buffered = 0;
  let flushFailures = 0;
  for (const status of statuses) {
    shardsD1.roundTrips += status.d1.roundTrips;
    shardsD1.statements += status.d1.statements;
    shardsD1.rowsWritten += status.d1.rowsWritten;
    buffered += status.buffered;
    flushFailures += status.flushFailures;
  }
  return ok({
    telemetry: {
      shard_count: shardCount,
      buffered,
      flush_failures: flushFailures,
      shard_rpcs: pipelineStats.shardRpcs,
      d1: {
        round_trips: shardsD1.roundTrips + pipelineStats.d1.roundTrips,
        statements: shardsD1.statements + pipelineStats.d1.statements,
        rows_written: shardsD1.rowsWritten + pipelineStats.d1.rowsWritten,
      },
    },
  });
}
