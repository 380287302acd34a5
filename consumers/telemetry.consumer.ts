import { backoffMs } from "../lib/backoff.ts";
import { config } from "../lib/config.ts";
import { D1Client } from "../lib/d1.ts";
import { fault } from "../lib/faults.ts";
import { hashToShard } from "../lib/hash.ts";
import { describeError, log } from "../lib/log.ts";
import { assertNever } from "../lib/result.ts";
import { insertOneRuntimeEvent, insertRuntimeEventStatements, toRow } from "../lib/runtime-events.ts";
import { TelemetryEventsEnvelopeSchema } from "../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { deadLetter } from "./dead-letter.ts";
import { pipelineStats } from "./stats.ts";

export const TELEMETRY_QUEUE = "shipyard-telemetry";

/** The Durable Object name of telemetry shard `index`. Stable: changing it orphans buffers. */
export function telemetryShardName(index: number): string {
  return `events-${index}`;
}

/** Retry delays for messages whose shard failed: 2 s, 4 s, 8 s, … (jittered), capped at 5 min. */
const RETRY_BASE_MS = 2_000;
const RETRY_CAP_MS = 300_000;
/** An overloaded shard is given more room: 10 s, 20 s, … capped at 15 min. */
const OVERLOADED_BASE_MS = 10_000;
const OVERLOADED_CAP_MS = 900_000;

type Parsed = { message: Message; events: RuntimeEvent[] };

/**
 * `shipyard-telemetry` consumer. Validates every envelope (poison goes to the dead-letter queue at
 * once, with the reason), then stores the events according to `RUNTIME_EVENT_DO_MODE`, and acks or
 * retries each message on its own: one bad message or one failing shard never holds back the rest.
 */
export async function consumeTelemetry(batch: MessageBatch, env: Env): Promise<void> {
  const parsed: Parsed[] = [];
  for (const message of batch.messages) {
    const result = TelemetryEventsEnvelopeSchema.safeParse(message.body);
    if (result.success) parsed.push({ message, events: result.data.events });
    else await deadLetter(env.TELEMETRY_DLQ, TELEMETRY_QUEUE, message, result.error);
  }
  if (parsed.length === 0) return;

  const mode = config(env).RUNTIME_EVENT_DO_MODE;
  switch (mode) {
    case "off":
      await writeEachDirect(env, parsed);
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

/**
 * Groups the batch's events by shard and makes one RPC per shard, in parallel. A message is acked
 * when every shard holding one of its events has stored them, and retried (all of its events:
 * the shards' ledgers drop the ones already stored) otherwise.
 */
async function viaShards(env: Env, parsed: Parsed[]): Promise<void> {
  const shardCount = config(env).SHARD_COUNT;
  const byShard = new Map<number, { events: RuntimeEvent[]; messages: Set<number> }>();
  parsed.forEach(({ events }, messageIndex) => {
    for (const event of events) {
      const shard = hashToShard(event.id, shardCount);
      let entry = byShard.get(shard);
      if (!entry) {
        entry = { events: [], messages: new Set() };
        byShard.set(shard, entry);
      }
      entry.events.push(event);
      entry.messages.add(messageIndex);
    }
  });

  const failed = new Map<number, { overloaded: boolean }>();
  await Promise.all(
    [...byShard].map(async ([shard, { events, messages }]) => {
      const outcome = await callShard(env, shard, events);
      if (outcome.ok) return;
      for (const index of messages) {
        const previous = failed.get(index);
        failed.set(index, { overloaded: (previous?.overloaded ?? false) || outcome.overloaded });
      }
    }),
  );

  parsed.forEach(({ message }, index) => {
    const failure = failed.get(index);
    if (!failure) {
      message.ack();
      return;
    }
    const delayMs = failure.overloaded
      ? backoffMs(message.attempts, OVERLOADED_BASE_MS, OVERLOADED_CAP_MS)
      : backoffMs(message.attempts, RETRY_BASE_MS, RETRY_CAP_MS);
    message.retry({ delaySeconds: Math.ceil(delayMs / 1000) });
  });
}

async function callShard(
  env: Env,
  shard: number,
  events: RuntimeEvent[],
): Promise<{ ok: true } | { ok: false; overloaded: boolean }> {
  const name = telemetryShardName(shard);
  pipelineStats.shardRpcs++;
  try {
    fault("consumer.shard_rpc", { shard: name });
    const result = await env.RUNTIME_EVENT_SHARD.getByName(name).ingest(events);
    if (result.ok) return { ok: true };
    switch (result.error.reason) {
      case "storage_failed":
        log.warn("shard_rejected_ingest", { shard: name, reason: result.error.reason, message: result.error.message });
        return { ok: false, overloaded: false };
      default:
        return assertNever(result.error.reason);
    }
  } catch (error) {
    // Errors the runtime raises for Durable Objects carry flags: `overloaded` (back off harder),
    // `retryable`. Either way the message is retried later, never in a tight loop.
    const overloaded =
      typeof error === "object" && error !== null && "overloaded" in error && error.overloaded === true;
    log.warn("shard_rpc_failed", { shard: name, events: events.length, overloaded, error: describeError(error) });
    return { ok: false, overloaded };
  }
}

/**
 * `RUNTIME_EVENT_DO_MODE=off`: the legacy path and the benchmark's baseline. One INSERT and one D1
 * round trip per event; a message is acked once all of its events are written.
 */
async function writeEachDirect(env: Env, parsed: Parsed[]): Promise<void> {
  const d1 = new D1Client(env.DB, pipelineStats.d1);
  await Promise.all(
    parsed.map(async ({ message, events }) => {
      try {
        const now = Date.now();
        for (const event of events) await d1.run(insertOneRuntimeEvent(d1, toRow(event, now)));
        message.ack();
      } catch (error) {
        log.warn("direct_write_failed", { message_id: message.id, error: describeError(error) });
        message.retry({ delaySeconds: Math.ceil(backoffMs(message.attempts, RETRY_BASE_MS, RETRY_CAP_MS) / 1000) });
      }
    }),
  );
}

/** Shadow path: the whole batch in one D1 batch of multi-row idempotent inserts. */
async function writeBatchDirect(env: Env, parsed: Parsed[]): Promise<void> {
  const d1 = new D1Client(env.DB, pipelineStats.d1);
  const now = Date.now();
  const rows = parsed.flatMap(({ events }) => events.map((event) => toRow(event, now)));
  await d1.batch(insertRuntimeEventStatements(d1, rows));
}
