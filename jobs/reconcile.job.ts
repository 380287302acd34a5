import { counterShard, counterShardName } from "../durable/counter-shard.do.ts";
import { config } from "../lib/config.ts";
import { describeError, log } from "../lib/log.ts";

/** Increments held longer than this are stranded (the alarm should have flushed them in 5 s). */
export const STRANDED_AFTER_MS = 60_000;

/**
 * The safety net for stranded counter buffers (a lost alarm, a shard that kept failing): asks
 * every counter shard to flush anything older than a minute, and logs what it found.
 */
export async function reconcileCounters(
  env: Env,
): Promise<{ shards: number; stranded: number; flushed: number; failed: number }> {
  const shardCount = config(env).SHARD_COUNT;
  const outcomes = await Promise.allSettled(
    Array.from({ length: shardCount }, (_, index) => counterShard(env, index).reconcile(STRANDED_AFTER_MS)),
  );
  const summary = { shards: shardCount, stranded: 0, flushed: 0, failed: 0 };
  outcomes.forEach((outcome, index) => {
    if (outcome.status === "rejected") {
      summary.failed++;
      log.error("counter_reconcile_shard_failed", {
        shard: counterShardName(index),
        error: describeError(outcome.reason),
      });
      return;
    }
    summary.stranded += outcome.value.stranded;
    summary.flushed += outcome.value.flushed;
    if (!outcome.value.ok) summary.failed++;
    if (outcome.value.stranded > 0) {
      log.warn("counter_reconcile_found_stranded", { shard: counterShardName(index), ...outcome.value });
    }
  });
  log.info("counter_reconcile", summary);
  return summary;
}
