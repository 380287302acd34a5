/**
 * The group commit of small queue sends (lib/send-coalescer.ts), against a queue whose sends the
 * test holds and settles by hand: who sends, what each message carries, and that a request only
 * resolves once the send carrying its items did.
 */
import { describe, it, vi } from "vitest";
import { QueueSendError } from "./queue.ts";
import { SendCoalescer } from "./send-coalescer.ts";
import { jsonBytes } from "./utf8.ts";

interface Item {
  id: string;
  pad?: string;
}

/** One `sendBatch` call the test settles. */
interface HeldSend {
  messages: MessageSendRequest[];
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A queue whose every `sendBatch` waits for the test (`release`, `fail`). */
function heldQueue() {
  const sends: HeldSend[] = [];
  const queue = {
    metrics: () => Promise.resolve({ backlogCount: 0, backlogBytes: 0 }),
    send: () => Promise.reject(new Error("send is not used")),
    sendBatch: (messages: Iterable<MessageSendRequest>) =>
      new Promise<QueueSendBatchResponse>((resolve, reject) => {
        sends.push({
          messages: [...messages],
          resolve: () => resolve({ metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } }),
          reject,
        });
      }),
  } satisfies Queue;
  return { queue, sends };
}

/** A message body's items (the test's envelope is `{ items }`). */
function bodyItems(body: unknown): Item[] {
  if (typeof body !== "object" || body === null || !("items" in body) || !Array.isArray(body.items)) {
    throw new Error(`not a test envelope: ${JSON.stringify(body)}`);
  }
  return body.items.map((item: unknown) => {
    if (typeof item !== "object" || item === null || !("id" in item) || typeof item.id !== "string") {
      throw new Error(`not a test item: ${JSON.stringify(item)}`);
    }
    return { id: item.id };
  });
}

/** The item ids of every message of a send, in order. */
function itemsOf(send: HeldSend | undefined): string[] {
  return (send?.messages ?? []).flatMap((message) => bodyItems(message.body).map((item) => item.id));
}

/** An item of about 200 bytes of JSON. */
function paddedItem(id: string): Item {
  return { id, pad: "x".repeat(180) };
}

const OVERHEAD = 64;

function coalescer(options: { messageBudget?: number; settleWaitMs?: number; aheadWaitMs?: number } = {}) {
  return new SendCoalescer<Item, { items: Item[] }>({
    queueName: "test-queue",
    overhead: OVERHEAD,
    wrap: (items) => ({ items }),
    ...options,
  });
}

/** The promises' outcomes, kept up to date as they settle (a rejection is handled at once). */
function track(promises: readonly Promise<void>[]): string[] {
  const states = promises.map(() => "pending");
  promises.forEach((promise, index) => {
    promise.then(
      () => (states[index] = "resolved"),
      (error: unknown) => (states[index] = error instanceof QueueSendError ? "QueueSendError" : String(error)),
    );
  });
  return states;
}

/** Every promise's outcome once every continuation that can run has run. */
async function outcomes(promises: readonly Promise<void>[]): Promise<string[]> {
  const states = track(promises);
  // A timer fires only once every queued continuation has run.
  await new Promise((resolve) => setTimeout(resolve, 0));
  return states;
}

const noWaitUntil = () => undefined;

describe("SendCoalescer", () => {
  it("sends a request alone at once when nothing is in flight, and resolves it only when that send resolves", async ({
    expect,
  }) => {
    const { queue, sends } = heldQueue();
    const sender = coalescer();
    const waited: Promise<unknown>[] = [];
    const one = sender.send(queue, [{ id: "a" }], (promise) => waited.push(promise));
    expect(sends.map(itemsOf)).toEqual([["a"]]);
    expect(waited).toHaveLength(1);
    expect(await outcomes([one])).toEqual(["pending"]);
    sends[0]?.resolve();
    expect(await outcomes([one])).toEqual(["resolved"]);
    expect(sender.stats).toEqual({ requests: 1, sends: 1, messages: 1, failures: 0 });
  });

  it("gathers the requests that arrive while a send is in flight into one message, sent when it settles", async ({
    expect,
  }) => {
    const { queue, sends } = heldQueue();
    const sender = coalescer();
    const first = sender.send(queue, [{ id: "a" }], noWaitUntil);
    const rest = [
      sender.send(queue, [{ id: "b" }], noWaitUntil),
      sender.send(queue, [{ id: "c1" }, { id: "c2" }], noWaitUntil),
      sender.send(queue, [{ id: "d" }], noWaitUntil),
    ];
    expect(await outcomes(rest)).toEqual(["pending", "pending", "pending"]);
    expect(sends).toHaveLength(1);
    sends[0]?.resolve();
    expect(await outcomes([first, ...rest])).toEqual(["resolved", "pending", "pending", "pending"]);
    // One send, one message, every waiting request's items in arrival order.
    expect(sends.map(itemsOf)).toEqual([["a"], ["b", "c1", "c2", "d"]]);
    expect(sends[1]?.messages).toHaveLength(1);
    sends[1]?.resolve();
    expect(await outcomes(rest)).toEqual(["resolved", "resolved", "resolved"]);
    expect(sender.stats).toEqual({ requests: 4, sends: 2, messages: 2, failures: 0 });
  });

  it("fails every request of a group whose send fails, and none of the others", async ({ expect }) => {
    const { queue, sends } = heldQueue();
    const sender = coalescer();
    const first = sender.send(queue, [{ id: "a" }], noWaitUntil);
    const group = [sender.send(queue, [{ id: "b" }], noWaitUntil), sender.send(queue, [{ id: "c" }], noWaitUntil)];
    sends[0]?.resolve();
    await outcomes([first]);
    const after = sender.send(queue, [{ id: "e" }], noWaitUntil);
    sends[1]?.reject(new Error("Queue send failed: 429 Too Many Requests"));
    expect(await outcomes([first, ...group])).toEqual(["resolved", "QueueSendError", "QueueSendError"]);
    // The request that came during the failed send went in the next one, which succeeds.
    sends[2]?.resolve();
    expect(await outcomes([after])).toEqual(["resolved"]);
    expect(sends.map(itemsOf)).toEqual([["a"], ["b", "c"], ["e"]]);
    expect(sender.stats.failures).toBe(1);
  });

  it("never grows a group past one message: a request that does not fit starts the next group", async ({ expect }) => {
    const { queue, sends } = heldQueue();
    const budget = 1_000;
    const sender = coalescer({ messageBudget: budget });
    const first = sender.send(queue, [paddedItem("a")], noWaitUntil);
    const waiting = Array.from({ length: 12 }, (_, i) => sender.send(queue, [paddedItem(`w${i}`)], noWaitUntil));
    sends[0]?.resolve();
    await outcomes([first]);
    // Each group goes when the one ahead of it settled.
    for (let settled = 1; settled < sends.length && settled < 20; settled++) {
      sends[settled]?.resolve();
      await outcomes(waiting);
    }
    expect(await outcomes(waiting)).toEqual(waiting.map(() => "resolved"));
    expect(sends.slice(1).flatMap(itemsOf)).toEqual(Array.from({ length: 12 }, (_, i) => `w${i}`));
    for (const send of sends) {
      expect(send.messages).toHaveLength(1);
      expect(jsonBytes(send.messages[0]?.body) - jsonBytes({ items: [] }) + OVERHEAD).toBeLessThanOrEqual(budget);
    }
    expect(sends.length).toBeGreaterThan(2);
  });

  it("sends a large request on its own, as many messages as it needs, without waiting for a send in flight", async ({
    expect,
  }) => {
    const { queue, sends } = heldQueue();
    const sender = coalescer();
    const first = sender.send(queue, [{ id: "a" }], noWaitUntil);
    const large = Array.from({ length: 30 }, (_, i) => ({ id: `big${i}`, pad: "y".repeat(8_000) }));
    const big = sender.send(queue, large, noWaitUntil);
    expect(sends).toHaveLength(2);
    expect(itemsOf(sends[1])).toEqual(large.map((item) => item.id));
    expect(sends[1]?.messages.length).toBeGreaterThan(1);
    sends[1]?.resolve();
    expect(await outcomes([first, big])).toEqual(["pending", "resolved"]);
  });

  it("fails the members waiting on a send that never settles, and lets the next group go without it", async ({
    expect,
  }) => {
    const { queue, sends } = heldQueue();
    const sender = coalescer({ settleWaitMs: 20, aheadWaitMs: 20 });
    // The first send stands for one whose request context ended: it never settles.
    void sender.send(queue, [{ id: "a" }], noWaitUntil);
    const group = [sender.send(queue, [{ id: "b" }], noWaitUntil), sender.send(queue, [{ id: "c" }], noWaitUntil)];
    const states = track(group);
    // After its wait for the send ahead, the group goes anyway; its sender is "b".
    await vi.waitUntil(() => sends.length === 2, { timeout: 5_000 });
    expect(sends.map(itemsOf)).toEqual([["a"], ["b", "c"]]);
    // That send does not settle either: "b" waits on its own I/O, "c" gives up after its wait and fails.
    await vi.waitUntil(() => states[1] !== "pending", { timeout: 5_000 });
    expect(states).toEqual(["pending", "QueueSendError"]);
    sends[1]?.resolve();
    expect(await outcomes(group)).toEqual(["resolved", "QueueSendError"]);
  });
});
