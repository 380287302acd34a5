import { config } from "../lib/config.ts";
import { D1Client } from "../lib/d1.ts";
import { hashToShard } from "../lib/hash.ts";
import { describeError, log } from "../lib/log.ts";
import { assertNever } from "../lib/result.ts";
import { insertOneRuntimeEvent, insertRuntimeEventStatements, toRow } from "../lib/runtime-events.d1.ts";
import { TelemetryEventsEnvelopeSchema } from "../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { deadLetter } from "./dead-letter.ts";
import { type Parsed, callShardSafely, fanOutToShards, retryDelaySeconds } from "./fan-out.ts";
import { type Failure, retryWithReasons } from "./failures.ts";
import { pipelineStats } from "../lib/pipeline-stats.ts";
import { QUEUES } from "../lib/queues.ts";
import { telemetryShard, telemetryShardName } from "../durable/runtime-event-shard.do.ts";

/**
 * `shipyard-telemetry` consumer. Validates every envelope (poison goes to the dead-letter queue at
 * once, with the reason), then stores the events according to `RUNTIME_EVENT_DO_MODE`, and acks or
 * retries each message on its own: one bad message or one failing shard never holds back the rest.
 */
export async function consumeTelemetry(batch: MessageBatch, env: Env): Promise<void> {
  const parsed: Parsed<RuntimeEvent>[] = [];
  for (const message of batch.messages) {
    const result = TelemetryEventsEnvelopeSchema.safeParse(message.body);
    if (result.success) parsed.push({ message, items: result.data.events });
    else await deadLetter(env.TELEMETRY_DLQ, QUEUES.telemetry.name, message, result.error);
  }
  if (parsed.length === 0) return;

  const mode = config(env).RUNTIME_EVENT_DO_MODE;
  switch (mode) {
    case "off":
      await writeEachDirect(env, parsed);
      return;
    case "batch":
      await writeWholeBatch(env, parsed);
      return;
    case "shadow": {
      // The shard path decides acks; the direct write runs alongside, deduped by the primary key.
      const [, direct] = await Promise.allSettled([viaShards(env, parsed), writeBatchDirect(env, parsed)]);
      if (direct.status === "rejected") log.warn("shadow_direct_write_failed", { error: describeError(direct.reason) });
      return;
    }
    case "primary":
      await viaShards(env, parsed);
      return;
    default:
      assertNever(mode);
  }
}

/** One RPC per shard holding events of the batch; a message is acked once all its shards stored them. */
function viaShards(env: Env, parsed: Parsed<RuntimeEvent>[]): Promise<void> {
  const shardCount = config(env).SHARD_COUNT;
  return fanOutToShards(
    parsed,
    (event) => hashToShard(event.id, shardCount),
    (shard, events) => {
      pipelineStats.telemetry.shardRpcs++;
      return callShardSafely(telemetryShardName(shard), events.length, async () => {
        const result = await telemetryShard(env, shard).ingest(events);
        return result.ok ? { ok: true } : { ok: false, ...result.error };
      });
    },
    { db: env.DB, queue: QUEUES.telemetry.name },
  );
}

/**
 * `RUNTIME_EVENT_DO_MODE=off`: the legacy path and the benchmark's baseline (arm A). What a
 * consumer written without shards or batching does: message after message, one INSERT and one
 * D1 round trip per event, each message acked once all of its events are written.
 */
async function writeEachDirect(env: Env, parsed: Parsed<RuntimeEvent>[]): Promise<void> {
  const d1 = new D1Client(env.DB, pipelineStats.telemetry.d1);
  const failures: Failure[] = [];
  for (const { message, items } of parsed) {
    try {
      const now = Date.now();
      for (const event of items) await d1.run(insertOneRuntimeEvent(d1, toRow(event, now)));
      message.ack();
    } catch (error) {
      log.warn("direct_write_failed", { message_id: message.id, error: describeError(error) });
      failures.push({
        message,
        reason: `direct D1 write failed: ${describeError(error)}`,
        delaySeconds: retryDelaySeconds(message.attempts),
      });
    }
  }
  await retryWithReasons(env.DB, QUEUES.telemetry.name, failures);
}

/**
 * `RUNTIME_EVENT_DO_MODE=batch`: the benchmark's middle arm, batching without Durable Objects. The
 * whole queue batch goes to D1 in one `db.batch` (one round trip, one transaction); every message
 * is acked once it commits, and all of them are retried with backoff if it fails. Nothing dedupes
 * before D1: the primary key drops repeated ids.
 */
async function writeWholeBatch(env: Env, parsed: Parsed<RuntimeEvent>[]): Promise<void> {
  try {
    await writeBatchDirect(env, parsed);
  } catch (error) {
    log.warn("batch_write_failed", { messages: parsed.length, error: describeError(error) });
    const reason = `batch D1 write failed: ${describeError(error)}`;
    await retryWithReasons(
      env.DB,
      QUEUES.telemetry.name,
      parsed.map(({ message }) => ({ message, reason, delaySeconds: retryDelaySeconds(message.attempts) })),
    );
    return;
  }
  for (const { message } of parsed) message.ack();
}

/** Shadow and batch paths: the whole batch in one D1 batch of multi-row idempotent inserts. */
async function writeBatchDirect(env: Env, parsed: Parsed<RuntimeEvent>[]): Promise<void> {
  const d1 = new D1Client(env.DB, pipelineStats.telemetry.d1);
  const now = Date.now();
  const rows = parsed.flatMap(({ items }) => items.map((event) => toRow(event, now)));
  await d1.batch(insertRuntimeEventStatements(d1, rows));
}
