import { isOverloaded } from "../lib/durable-object-errors.ts";
import { backoffMs } from "../lib/backoff.ts";
import { fault } from "../lib/faults.ts";
import { describeError, log } from "../lib/log.ts";
import { type Failure, retryWithReasons } from "./failures.ts";

/** Retry delays for messages whose shard failed: 2 s, 4 s, 8 s, … (jittered), capped at 5 min. */
const RETRY_BASE_MS = 2_000;
const RETRY_CAP_MS = 300_000;
/** An overloaded shard is given more room: 10 s, 20 s, … capped at 15 min. */
const OVERLOADED_BASE_MS = 10_000;
const OVERLOADED_CAP_MS = 900_000;

/** Seconds to wait before redelivering a message on its `attempts`-th failure. */
export function retryDelaySeconds(attempts: number, overloaded = false): number {
  const ms = overloaded
    ? backoffMs(attempts, OVERLOADED_BASE_MS, OVERLOADED_CAP_MS)
    : backoffMs(attempts, RETRY_BASE_MS, RETRY_CAP_MS);
  return Math.ceil(ms / 1000);
}

/** A parsed queue message and the items it carries. */
export interface Parsed<T> {
  message: Message;
  items: T[];
}

/** A failed shard call says why: the reason is recorded with the messages it makes retry. */
export type ShardOutcome = { ok: true } | { ok: false; overloaded: boolean; reason: string };

/** Where the reasons of retried messages are recorded (consumers/failures.ts). */
export interface FailureSink {
  db: D1Database;
  queue: string;
}

/**
 * Groups the items of a batch by shard, makes one call per shard (in parallel), then acks every
 * message whose shards all succeeded and retries the others with backoff (longer if a shard said it
 * was overloaded), recording why in `sink`. A retried message carries all of its items again; the
 * shards' ledgers drop the ones they already stored, so a partial success is harmless.
 */
export async function fanOutToShards<T>(
  parsed: readonly Parsed<T>[],
  shardOf: (item: T) => number,
  call: (shard: number, items: T[]) => Promise<ShardOutcome>,
  sink: FailureSink,
): Promise<void> {
  const byShard = new Map<number, { items: T[]; messages: Set<number> }>();
  parsed.forEach(({ items }, messageIndex) => {
    for (const item of items) {
      const shard = shardOf(item);
      let entry = byShard.get(shard);
      if (!entry) {
        entry = { items: [], messages: new Set() };
        byShard.set(shard, entry);
      }
      entry.items.push(item);
      entry.messages.add(messageIndex);
    }
  });

  const failed = new Map<number, { overloaded: boolean; reasons: string[] }>();
  await Promise.all(
    [...byShard].map(async ([shard, { items, messages }]) => {
      const outcome = await call(shard, items);
      if (outcome.ok) return;
      for (const index of messages) {
        const entry = failed.get(index) ?? { overloaded: false, reasons: [] };
        entry.overloaded ||= outcome.overloaded;
        entry.reasons.push(outcome.reason);
        failed.set(index, entry);
      }
    }),
  );

  const retries: Failure[] = [];
  parsed.forEach(({ message }, index) => {
    const failure = failed.get(index);
    if (!failure) message.ack();
    else {
      retries.push({
        message,
        reason: failure.reasons.join("; "),
        delaySeconds: retryDelaySeconds(message.attempts, failure.overloaded),
      });
    }
  });
  await retryWithReasons(sink.db, sink.queue, retries);
}

/**
 * Makes one shard RPC, turning a thrown error into a `ShardOutcome`. Errors the runtime raises for
 * Durable Objects carry flags: `overloaded` means back off harder. Either way the message is
 * retried later, never in a tight loop.
 */
export async function callShardSafely(
  shardName: string,
  items: number,
  rpc: () => Promise<{ ok: true } | { ok: false; reason: string; message: string }>,
): Promise<ShardOutcome> {
  try {
    fault("consumer.shard_rpc", { shard: shardName });
    const result = await rpc();
    if (result.ok) return { ok: true };
    log.warn("shard_rejected_ingest", { shard: shardName, reason: result.reason, message: result.message });
    return { ok: false, overloaded: false, reason: `shard ${shardName} refused: ${result.reason}: ${result.message}` };
  } catch (error) {
    const overloaded = isOverloaded(error);
    log.warn("shard_rpc_failed", { shard: shardName, items, overloaded, error: describeError(error) });
    return {
      ok: false,
      overloaded,
      reason: `shard ${shardName} ${overloaded ? "overloaded" : "call failed"}: ${describeError(error)}`,
    };
  }
}
