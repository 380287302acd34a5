import { log } from "./log.ts";
import { packRanges } from "./pack.ts";
import { MESSAGE_BUDGET_BYTES, QueueSendError, type SizedBody, sendSized } from "./queue.ts";
import { jsonBytes } from "./utf8.ts";

/**
 * Group commit for small queue sends (docs/decisions/0018-15-coalesced-ingest-sends.md).
 *
 * Each small request hands its items to the isolate's coalescer for its queue and waits. When no
 * send of that queue is in flight, the request sends its items at once, alone; while one is, the
 * items of every request that arrives meanwhile gather in one open group, and when the send
 * ahead settles the first of them still running sends the whole group as one message in one
 * `sendBatch`. So an idle isolate adds no wait, and a busy one makes one queue send (and one
 * message the consumer fans out) per group instead of one per request.
 *
 * A request resolves only once the send that carries its items resolved: every 202 still means
 * "in the queue". If that send fails, every request of the group rejects with `QueueSendError`
 * (503 + `Retry-After` at the edge, nothing reported accepted; the clients' retries carry the
 * same ids, which the shards dedupe). A send is the I/O of the request that started it, so it is
 * registered with that request's `waitUntil` (its context outlives a client that goes away, up to
 * the platform's 30 s), and the other members wait at most `SETTLE_WAIT_MS` for it, then fail as
 * if it had: a wait another request owns must never hang a request.
 */

/** Requests whose items are larger than this (JSON) send alone, as before: they fill messages themselves. */
export const COALESCE_MAX_REQUEST_BYTES = 32 * 1024;
/** Longest a group waits for the send ahead of it before it goes anyway (a slow send is no reason to queue). */
export const AHEAD_WAIT_MS = 1_000;
/** Longest a request waits for a send another request of its group started; then it fails (503). */
export const SETTLE_WAIT_MS = 10_000;

type WaitUntil = (promise: Promise<unknown>) => void;

/** What one isolate's coalescer did since it started (`GET /v1/admin/metrics`, the benchmark). */
export interface CoalescerStats {
  /** Requests handed to it. */
  requests: number;
  /** Sends it made: a coalesced group is one `sendBatch`; a large request is as many as it needs. */
  sends: number;
  /** Messages those sends carried. */
  messages: number;
  /** Sends that failed (each fails every request of its group). */
  failures: number;
}

interface Group<T> {
  items: T[];
  sizes: number[];
  /** The group's message as packed: the envelope, the array's brackets and commas, the items. */
  bytes: number;
  requests: number;
  started: boolean;
  settled: boolean;
  /** Settles when its send does; every member but the sender waits on it. */
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
  /** Settles (never rejects) when the group ahead of it settled; null when there is none in flight. */
  ahead: Promise<void> | null;
}

/** One queue binding's groups in this isolate. */
interface Lane<T> {
  /** The group requests join now: its send has not started. */
  open: Group<T> | null;
  /** The last group made (the next one waits for it). */
  last: Group<T> | null;
}

export interface CoalescerOptions<T, B> {
  /** The queue's name, for errors and logs. */
  queueName: string;
  /** Builds one message body (an envelope) from a group's items. */
  wrap: (items: T[]) => B;
  /** Room for the envelope's own fields around the items array. */
  overhead: number;
  /** Largest message (JSON bytes); a group never grows past one. */
  messageBudget?: number;
  maxRequestBytes?: number;
  aheadWaitMs?: number;
  settleWaitMs?: number;
}

export class SendCoalescer<T, B = unknown> {
  readonly stats: CoalescerStats = { requests: 0, sends: 0, messages: 0, failures: 0 };
  readonly #options: Required<CoalescerOptions<T, B>>;
  // By binding object: a group only ever goes out through the binding its requests gave.
  readonly #lanes = new WeakMap<Queue, Lane<T>>();

  constructor(options: CoalescerOptions<T, B>) {
    this.#options = {
      messageBudget: MESSAGE_BUDGET_BYTES,
      maxRequestBytes: COALESCE_MAX_REQUEST_BYTES,
      aheadWaitMs: AHEAD_WAIT_MS,
      settleWaitMs: SETTLE_WAIT_MS,
      ...options,
    };
  }

  /**
   * Sends `items` to `queue` and resolves once they are in it, alone or with the items of
   * concurrent requests; rejects with `QueueSendError` if the send carrying them failed or did
   * not settle in time. `waitUntil` is the request's (`ctx.waitUntil`).
   */
  async send(queue: Queue, items: readonly T[], waitUntil: WaitUntil): Promise<void> {
    this.stats.requests++;
    if (items.length === 0) return;
    const sizes = items.map(jsonBytes);
    const bytes = sizes.reduce((sum, size) => sum + size + 1, 0);
    if (bytes > this.#options.maxRequestBytes) {
      await this.#sendItems(queue, items, sizes);
      return;
    }

    const lane = this.#lane(queue);
    let group = lane.open;
    if (!group || group.bytes + bytes > this.#options.messageBudget) {
      group = this.#newGroup(lane.last);
      lane.open = group;
      lane.last = group;
    }
    group.items.push(...items);
    group.sizes.push(...sizes);
    group.bytes += bytes;
    group.requests++;

    if (group.ahead) await this.#within(group.ahead, this.#options.aheadWaitMs);
    if (!group.started) {
      // The first member still running sends the group, as its own I/O.
      group.started = true;
      if (lane.open === group) lane.open = null;
      const sent = this.#sendItems(queue, group.items, group.sizes);
      sent.then(group.resolve, group.reject);
      waitUntil(sent.catch(() => undefined));
      await sent;
      return;
    }
    if (await this.#within(group.done, this.#options.settleWaitMs)) return;
    log.warn("queue_send_wait_timeout", {
      queue: this.#options.queueName,
      requests: group.requests,
      wait_ms: this.#options.settleWaitMs,
    });
    throw new QueueSendError(
      this.#options.queueName,
      new Error(`the shared send of ${group.requests} requests did not settle within ${this.#options.settleWaitMs} ms`),
    );
  }

  #lane(queue: Queue): Lane<T> {
    let lane = this.#lanes.get(queue);
    if (!lane) {
      lane = { open: null, last: null };
      this.#lanes.set(queue, lane);
    }
    return lane;
  }

  #newGroup(ahead: Group<T> | null): Group<T> {
    const settle = Promise.withResolvers<void>();
    const group: Group<T> = {
      items: [],
      sizes: [],
      bytes: this.#options.overhead + 1,
      requests: 0,
      started: false,
      settled: false,
      done: settle.promise,
      resolve: () => {
        group.settled = true;
        settle.resolve();
      },
      reject: (error) => {
        group.settled = true;
        settle.reject(error);
      },
      ahead:
        ahead && !ahead.settled
          ? ahead.done.then(
              () => undefined,
              () => undefined,
            )
          : null,
    };
    // Members await it, but a group whose members all went away must not be an unhandled rejection.
    group.done.catch(() => undefined);
    return group;
  }

  /** True once `promise` resolved, false if `ms` passed first; rejects if it rejects first. */
  async #within(promise: Promise<unknown>, ms: number): Promise<boolean> {
    let timer: number | null = null;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([promise.then(() => true as const), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Packs `items` (JSON sizes `sizes`) in order into as few messages as fit the budget, each
   * with its size, so the send need not serialise them again to measure them.
   */
  pack(items: readonly T[], sizes: readonly number[] = items.map(jsonBytes)): SizedBody<B>[] {
    const { overhead, messageBudget, wrap } = this.#options;
    return packRanges(sizes, messageBudget, overhead).map(({ from, to, bytes }) => ({
      body: wrap(items.slice(from, to)),
      bytes,
    }));
  }

  /** Packs `items` into messages and sends them; `QueueSendError` if any send fails. */
  async #sendItems(queue: Queue, items: readonly T[], sizes: readonly number[]): Promise<void> {
    const bodies = this.pack(items, sizes);
    this.stats.sends++;
    this.stats.messages += bodies.length;
    try {
      await sendSized(queue, this.#options.queueName, bodies);
    } catch (error) {
      this.stats.failures++;
      throw error;
    }
  }
}
