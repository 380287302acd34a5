import { describeError, log } from "./log.ts";
import { packRanges } from "./pack.ts";
import { jsonBytes } from "./utf8.ts";

/**
 * Cloudflare Queues limits (developers.cloudflare.com/queues/platform/limits):
 * a message is at most 128 KB, a `sendBatch` at most 100 messages and 256 KB in all.
 * Messages are sent as `contentType: "json"`, so their size is their UTF-8 JSON length, which is
 * what the budgets below measure. The budgets keep a margin under the hard limits for the
 * per-message metadata the platform adds.
 */
export const MESSAGE_BUDGET_BYTES = 120 * 1024;
export const BATCH_BUDGET_BYTES = 240 * 1024;
export const BATCH_MAX_MESSAGES = 100;

/**
 * Packs items into as few groups as possible, in order, so that each group's JSON array stays
 * under `budget` bytes. `overhead` is the size of everything around the array (the envelope).
 * An item larger than the budget alone gets a group of its own (callers bound item sizes so that
 * such a group still fits the hard limit).
 */
export function packBySize<T>(items: readonly T[], budget: number, overhead = 0): T[][] {
  return packSized(items, budget, overhead).map((group) => group.items);
}

/** `packBySize`, with each group's size: its JSON array plus `overhead` (an upper bound). */
export function packSized<T>(items: readonly T[], budget: number, overhead = 0): { items: T[]; bytes: number }[] {
  return packRanges(items.map(jsonBytes), budget, overhead).map(({ from, to, bytes }) => ({
    items: items.slice(from, to),
    bytes,
  }));
}

/**
 * Packs items into envelopes (`wrap` builds one from a group) of at most `budget` bytes, each
 * with an upper bound of its size, so `sendSized` need not serialise them again to measure them.
 */
export function packMessages<T, B>(
  items: readonly T[],
  budget: number,
  overhead: number,
  wrap: (group: T[]) => B,
): SizedBody<B>[] {
  return packSized(items, budget, overhead).map((group) => ({ body: wrap(group.items), bytes: group.bytes }));
}

/** A message body and an upper bound of its UTF-8 JSON size. */
export interface SizedBody<B = unknown> {
  body: B;
  bytes: number;
}

/** Raised when a queue refuses or fails a send; producers answer 503 with `Retry-After`. */
export class QueueSendError extends Error {
  constructor(
    readonly queue: string,
    cause: unknown,
  ) {
    super(`sending to ${queue} failed: ${describeError(cause)}`, { cause });
    this.name = "QueueSendError";
  }
}

/**
 * Sends message bodies as JSON in `sendBatch` calls that respect the count and byte limits, and
 * resolves only once every send has resolved. A failure of any send rejects with
 * `QueueSendError`: the caller reports nothing accepted, and the client's retry (same ids) is
 * made harmless by dedupe downstream.
 */
export function sendAll(
  queue: Queue,
  queueName: string,
  bodies: readonly unknown[],
  options: { delaySeconds?: number } = {},
): Promise<void> {
  return sendSized(
    queue,
    queueName,
    bodies.map((body) => ({ body, bytes: jsonBytes(body) })),
    options,
  );
}

/** `sendAll` for bodies whose size is known already (`packMessages`). */
export async function sendSized(
  queue: Queue,
  queueName: string,
  bodies: readonly SizedBody[],
  options: { delaySeconds?: number } = {},
): Promise<void> {
  const batches: MessageSendRequest[][] = [];
  let current: MessageSendRequest[] = [];
  let size = 0;
  for (const { body, bytes } of bodies) {
    if (current.length > 0 && (current.length >= BATCH_MAX_MESSAGES || size + bytes > BATCH_BUDGET_BYTES)) {
      batches.push(current);
      current = [];
      size = 0;
    }
    current.push({ body, contentType: "json", ...options });
    size += bytes;
  }
  if (current.length > 0) batches.push(current);
  try {
    await Promise.all(batches.map((batch) => queue.sendBatch(batch)));
  } catch (error) {
    log.error("queue_send_failed", { queue: queueName, messages: bodies.length, error: describeError(error) });
    throw new QueueSendError(queueName, error);
  }
}
