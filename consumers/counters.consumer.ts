import { applyFlush } from "../lib/counters.d1.ts";
import { config } from "../lib/config.ts";
import { D1Client } from "../lib/d1.ts";
import { describeError, log } from "../lib/log.ts";
import { assertNever } from "../lib/result.ts";
import type { Increment } from "../schemas/counter.schema.ts";
import { CounterIncrementsEnvelopeSchema } from "../schemas/envelope.schema.ts";
import { deadLetter } from "./dead-letter.ts";
import { type Parsed, callShardSafely, fanOutToShards, retryDelaySeconds } from "./fan-out.ts";
import { type Failure, retryWithReasons } from "./failures.ts";
import { pipelineStats } from "../lib/pipeline-stats.ts";
import { QUEUES } from "../lib/queues.ts";
import { counterShard, counterShardName, counterShardOf } from "../durable/counter-shard.do.ts";

type ParsedIncrements = Parsed<Increment> & { envelopeId: string };

/**
 * `shipyard-counters` consumer: poison to the dead-letter queue at once; then, by `COUNTER_DO_MODE`,
 * `primary` (shards hold and flush), `shadow` (a direct exactly-once D1 write per message; shards
 * only acknowledge) or `off` (a direct D1 write per increment). Acks per message.
 */
export async function consumeCounters(batch: MessageBatch, env: Env): Promise<void> {
  const parsed: ParsedIncrements[] = [];
  for (const message of batch.messages) {
    const result = CounterIncrementsEnvelopeSchema.safeParse(message.body);
    if (result.success) parsed.push({ message, items: result.data.increments, envelopeId: result.data.id });
    else await deadLetter(env.COUNTERS_DLQ, QUEUES.counters.name, message, result.error);
  }
  if (parsed.length === 0) return;

  const mode = config(env).COUNTER_DO_MODE;
  switch (mode) {
    case "off":
      await writeDirect(env, parsed, "per_increment");
      return;
    case "shadow": {
      const written = await writeDirect(env, parsed, "per_message");
      await viaShards(env, written, false);
      return;
    }
    case "primary":
      await viaShards(env, parsed, true);
      return;
    default:
      assertNever(mode);
  }
}

function viaShards(env: Env, parsed: Parsed<Increment>[], persist: boolean): Promise<void> {
  const shardCount = config(env).SHARD_COUNT;
  return fanOutToShards(
    parsed,
    (inc) => counterShardOf(inc.scope, inc.key, shardCount),
    (shard, increments) => {
      pipelineStats.counters.shardRpcs++;
      return callShardSafely(counterShardName(shard), increments.length, async () => {
        const result = await counterShard(env, shard).apply(increments, persist);
        return result.ok ? { ok: true } : { ok: false, ...result.error };
      });
    },
    { db: env.DB, queue: QUEUES.counters.name },
  );
}

/**
 * Direct exactly-once D1 writes (lib/counters.d1.ts). `per_increment`: one flush and one round trip
 * per increment (flush id `direct:<increment id>`), the baseline. `per_message`: one flush per
 * message (flush id `direct:<envelope id>`, so a redelivered message is recognised). Messages whose
 * write failed are retried; the others are returned (and, in `off` mode, acked).
 */
async function writeDirect(
  env: Env,
  parsed: ParsedIncrements[],
  granularity: "per_increment" | "per_message",
): Promise<ParsedIncrements[]> {
  const d1 = new D1Client(env.DB, pipelineStats.counters.d1);
  const written: ParsedIncrements[] = [];
  const failures: Failure[] = [];
  await Promise.all(
    parsed.map(async (entry) => {
      try {
        if (granularity === "per_message") {
          await applyFlush(d1, `direct:${entry.envelopeId}`, "direct", entry.items);
          written.push(entry);
        } else {
          for (const inc of entry.items) await applyFlush(d1, `direct:${inc.id}`, "direct", [inc]);
          entry.message.ack();
        }
      } catch (error) {
        log.warn("counter_direct_write_failed", { message_id: entry.message.id, error: describeError(error) });
        failures.push({
          message: entry.message,
          reason: `direct D1 write failed: ${describeError(error)}`,
          delaySeconds: retryDelaySeconds(entry.message.attempts),
        });
      }
    }),
  );
  await retryWithReasons(env.DB, QUEUES.counters.name, failures);
  return written;
}
