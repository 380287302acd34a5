import { env } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { packEvents } from "../producers/events.producer.ts";
import { MAX_EVENT_DATA_BYTES, type RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { jsonBytes } from "./utf8.ts";
import { SENT } from "../test/helpers.ts";
import { MESSAGE_BUDGET_BYTES, QueueSendError, packBySize, sendAll, sendSized } from "./queue.ts";

/**
 * Cloudflare Queues limits (developers.cloudflare.com/queues/platform/limits, and what Miniflare
 * enforces): 128 KB per message, 100 messages and 256 KB per sendBatch; about 100 bytes of
 * metadata are added to each message.
 */
const MESSAGE_LIMIT = 128_000;
const BATCH_LIMIT = 256_000;
const BATCH_MAX_MESSAGES = 100;
const METADATA_BYTES = 100;

afterEach(() => {
  vi.restoreAllMocks();
});

/** The real producer binding, capturing what `sendAll` hands it instead of enqueueing. */
function captureSends() {
  return vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch").mockResolvedValue(SENT);
}

/** The largest event the schema accepts: maximal id, project, type and 16 KiB of data. */
function largestEvent(i: number): RuntimeEvent {
  const id = `${i}-`.padEnd(128, "i");
  return {
    id,
    project_id: "p".repeat(64),
    type: "t".repeat(64),
    ts: Number.MAX_SAFE_INTEGER,
    data: { pad: "x".repeat(MAX_EVENT_DATA_BYTES - 10) },
  };
}

describe("packBySize", () => {
  it("keeps every group's JSON (plus overhead) within the budget, in order, each item once", ({ expect }) => {
    const items = Array.from({ length: 500 }, (_, i) => ({ i, pad: "y".repeat((i * 37) % 900) }));
    const groups = packBySize(items, 10_000, 300);
    expect(groups.length).toBeGreaterThan(1);
    for (const group of groups) expect(jsonBytes(group) + 300).toBeLessThanOrEqual(10_000);
    expect(groups.flat()).toEqual(items);
    // Greedy: no group could have taken the next group's first item.
    groups.slice(0, -1).forEach((group, index) => {
      const next = groups[index + 1]?.[0];
      expect(jsonBytes([...group, next]) + 300).toBeGreaterThan(10_000);
    });
  });

  it("gives an item larger than the budget a group of its own", ({ expect }) => {
    const big = { pad: "z".repeat(2_000) };
    expect(packBySize([{ a: 1 }, big, { b: 2 }], 1_000)).toEqual([[{ a: 1 }], [big], [{ b: 2 }]]);
  });
});

describe("packEvents", () => {
  it("packs a full 1 MiB request of the largest events into messages within 128 KB", ({ expect }) => {
    const events = Array.from({ length: 61 }, (_, i) => largestEvent(i));
    expect(jsonBytes({ events })).toBeLessThanOrEqual(1024 * 1024);
    const packed = packEvents(events);
    const envelopes = packed.map((message) => message.body);
    for (const { body, bytes } of packed) {
      expect(jsonBytes(body)).toBeLessThanOrEqual(MESSAGE_BUDGET_BYTES);
      expect(jsonBytes(body) + METADATA_BYTES).toBeLessThanOrEqual(MESSAGE_LIMIT);
      // The size sendSized trusts is an upper bound of the real one.
      expect(bytes).toBeGreaterThanOrEqual(jsonBytes(body));
    }
    expect(envelopes.flatMap((envelope) => envelope.events)).toEqual(events);
    expect(new Set(envelopes.map((envelope) => envelope.id)).size).toBe(envelopes.length);
  });
});

describe("sendAll", () => {
  it("sends at most 100 messages per sendBatch, in order, as JSON", async ({ expect }) => {
    const sendBatch = captureSends();
    const bodies = Array.from({ length: 250 }, (_, i) => ({ i }));
    await sendAll(env.TELEMETRY_QUEUE, "shipyard-telemetry", bodies, { delaySeconds: 3 });
    const batches = sendBatch.mock.calls.map(([batch]) => [...batch]);
    expect(batches.map((batch) => batch.length)).toEqual([100, 100, 50]);
    expect(batches.flat().map((message) => message.body)).toEqual(bodies);
    for (const message of batches.flat()) expect(message).toMatchObject({ contentType: "json", delaySeconds: 3 });
  });

  it("keeps every sendBatch within 256 KB and every message within 128 KB", async ({ expect }) => {
    const sendBatch = captureSends();
    const events = Array.from({ length: 61 }, (_, i) => largestEvent(i));
    await sendSized(env.TELEMETRY_QUEUE, "shipyard-telemetry", packEvents(events));
    const batches = sendBatch.mock.calls.map(([batch]) => [...batch]);
    expect(batches.length).toBeGreaterThan(1);
    for (const batch of batches) {
      expect(batch.length).toBeLessThanOrEqual(BATCH_MAX_MESSAGES);
      const sizes = batch.map((message) => jsonBytes(message.body) + METADATA_BYTES);
      for (const size of sizes) expect(size).toBeLessThanOrEqual(MESSAGE_LIMIT);
      expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(BATCH_LIMIT);
    }
  });

  it("the real queue binding accepts those batches", async ({ expect }) => {
    // Miniflare enforces the same limits: a batch over them would be refused here.
    const sendBatch = vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch");
    const events = Array.from({ length: 61 }, (_, i) => largestEvent(i));
    await expect(sendSized(env.TELEMETRY_QUEUE, "shipyard-telemetry", packEvents(events))).resolves.toBeUndefined();
    expect(sendBatch).toHaveBeenCalled();
    await Promise.all(sendBatch.mock.results.map((result) => result.value));
  });

  it("rejects with QueueSendError naming the queue when any sendBatch fails", async ({ expect }) => {
    const settled: string[] = [];
    vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch").mockImplementation(async (messages) => {
      const first = [...messages][0]?.body;
      settled.push(JSON.stringify(first));
      if (JSON.stringify(first) === JSON.stringify({ i: 100 })) throw new Error("Queue send failed: 429");
      return SENT;
    });
    const bodies = Array.from({ length: 250 }, (_, i) => ({ i }));
    const sending = sendAll(env.TELEMETRY_QUEUE, "shipyard-telemetry", bodies);
    await expect(sending).rejects.toBeInstanceOf(QueueSendError);
    await expect(sending).rejects.toThrow(/shipyard-telemetry.*429/);
    expect(settled).toHaveLength(3);
  });
});
