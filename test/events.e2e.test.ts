/**
 * `POST /v1/events` end to end: the real HTTP edge, the real `shipyard-telemetry` queue and
 * consumer, the RuntimeEventShard Durable Objects and D1 `runtime_events`, in each
 * `RUNTIME_EVENT_DO_MODE`. Every test uses its own project id: D1 is shared by the tests of a file.
 */
import type { MessageBatchMessage } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { config } from "../lib/config.ts";
import { armFault, disarmFaults } from "../lib/faults.ts";
import { jsonBytes } from "../lib/utf8.ts";
import { TelemetryEventsEnvelopeSchema } from "../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import {
  ADMIN_TOKEN,
  BASE_URL,
  SENT,
  WAIT,
  countRows,
  deliver,
  ingestSends,
  makeEvent,
  makeEvents,
  observeShardIngests,
  postEvents,
  shardsHold,
  telemetryMessages,
  uid,
  waitForRows,
} from "./helpers.ts";

/** Cloudflare Queues limits, as Miniflare enforces them (bytes). */
const QUEUE_MESSAGE_LIMIT = 128_000;
const QUEUE_BATCH_LIMIT = 256_000;
/** Per-message metadata the platform adds to what we send. */
const QUEUE_MESSAGE_OVERHEAD = 100;

afterEach(() => {
  vi.restoreAllMocks();
  disarmFaults();
});

/**
 * POSTs through the real edge but captures what it enqueues instead of sending it, so a test can
 * hand the messages to the consumer with a different configuration.
 */
async function postAndCapture(events: RuntimeEvent[]): Promise<{ status: number; messages: MessageBatchMessage[] }> {
  const sendBatch = vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch").mockResolvedValue(SENT);
  const response = await postEvents({ events });
  const messages = sendBatch.mock.calls
    .flatMap(([batch]) => [...batch])
    .map((request) => ({ id: uid("msg"), timestamp: new Date(), attempts: 1, body: request.body }));
  sendBatch.mockRestore();
  return { status: response.status, messages };
}

type StoredRow = { id: string; project_id: string; type: string; ts: number; data: string };

async function storedRows(projectId: string): Promise<StoredRow[]> {
  const { results } = await env.DB.prepare(
    "SELECT id, project_id, type, ts, data FROM runtime_events WHERE project_id = ? ORDER BY id",
  )
    .bind(projectId)
    .all<StoredRow>();
  return results;
}

function asRows(events: RuntimeEvent[]): StoredRow[] {
  return events
    .map((event) => ({ ...event, data: JSON.stringify(event.data) }))
    .toSorted((a, b) => (a.id < b.id ? -1 : 1));
}

/** Delivers `messages` again (second attempt): all are acked and `projectId` then holds `rows` rows. */
async function redeliverAndCount(
  messages: readonly MessageBatchMessage[],
  targetEnv: Env,
  projectId: string,
  rows: number,
): Promise<void> {
  const again = await deliver(
    messages.map((m) => ({ ...m, attempts: 2 })),
    targetEnv,
  );
  expect(again.retryMessages).toEqual([]);
  expect(await countRows(projectId)).toBe(rows);
}

const MetricsSchema = z.object({
  telemetry: z.object({
    shard_count: z.number(),
    buffered: z.number(),
    shard_rpcs: z.number(),
    shard_alarms: z.number(),
    d1: z.object({ round_trips: z.number(), statements: z.number(), rows_written: z.number() }),
  }),
});

/** `GET /v1/admin/metrics` → telemetry: pipeline counters since the isolate started. */
async function metrics() {
  const response = await exports.default.fetch(`${BASE_URL}/v1/admin/metrics`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  expect(response.status).toBe(200);
  return MetricsSchema.parse(await response.json()).telemetry;
}

describe("RUNTIME_EVENT_DO_MODE", () => {
  it("primary (the default): queue → shards → D1, every field stored as sent", async ({ expect }) => {
    expect(config(env).RUNTIME_EVENT_DO_MODE).toBe("primary");
    const projectId = uid("primary");
    const events = makeEvents(projectId, 25);
    const response = await postEvents({ events });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 25 });

    expect(await waitForRows(projectId, 25)).toBe(25);
    expect(await storedRows(projectId)).toEqual(asRows(events));
    // Through the shards: each remembers its ids and has flushed its buffer.
    await vi.waitUntil(async () => (await shardsHold(events.map((e) => e.id))).buffered === 0, WAIT);
    expect(await shardsHold(events.map((e) => e.id))).toEqual({ seen: 25, buffered: 0 });
  });

  it("shadow: D1 written directly at once, and the shards store and flush the same events without doubling", async ({
    expect,
  }) => {
    const shadowEnv: Env = { ...env, RUNTIME_EVENT_DO_MODE: "shadow" };
    expect(config(shadowEnv).RUNTIME_EVENT_DO_MODE).toBe("shadow");
    const projectId = uid("shadow");
    const events = makeEvents(projectId, 25);
    const ids = events.map((e) => e.id);
    const { status, messages } = await postAndCapture(events);
    expect(status).toBe(202);
    expect(messages.length).toBeGreaterThan(0);

    const result = await deliver(messages, shadowEnv);
    expect(result.explicitAcks.toSorted()).toEqual(messages.map((m) => m.id).toSorted());
    expect(result.retryMessages).toEqual([]);
    // The direct write was awaited by the consumer: no flush needed to see the rows.
    expect(await countRows(projectId)).toBe(25);
    expect((await shardsHold(ids)).seen).toBe(25);

    await vi.waitUntil(async () => (await shardsHold(ids)).buffered === 0, WAIT);
    expect(await storedRows(projectId)).toEqual(asRows(events));
  });

  it("off: one direct insert per event, the shards are never touched", async ({ expect }) => {
    const offEnv: Env = { ...env, RUNTIME_EVENT_DO_MODE: "off" };
    expect(config(offEnv).RUNTIME_EVENT_DO_MODE).toBe("off");
    const projectId = uid("off");
    const events = makeEvents(projectId, 25);
    const { status, messages } = await postAndCapture(events);
    expect(status).toBe(202);

    const result = await deliver(messages, offEnv);
    expect(result.explicitAcks.toSorted()).toEqual(messages.map((m) => m.id).toSorted());
    expect(result.retryMessages).toEqual([]);
    expect(await storedRows(projectId)).toEqual(asRows(events));
    expect(await shardsHold(events.map((e) => e.id))).toEqual({ seen: 0, buffered: 0 });

    // A redelivery (at least once) adds nothing.
    await redeliverAndCount(messages, offEnv, projectId, 25);
  });

  it("batch: the whole queue batch in one D1 round trip, each id stored once, the shards never touched", async ({
    expect,
  }) => {
    const batchEnv: Env = { ...env, RUNTIME_EVENT_DO_MODE: "batch" };
    expect(config(batchEnv).RUNTIME_EVENT_DO_MODE).toBe("batch");
    const projectId = uid("batch");
    const events = makeEvents(projectId, 25);
    // 5 ids sent twice in the same request: nothing dedupes before D1, its primary key does.
    const { status, messages } = await postAndCapture([...events, ...events.slice(0, 5)]);
    expect(status).toBe(202);

    const before = await metrics();
    const result = await deliver(messages, batchEnv);
    const after = await metrics();
    expect(result.explicitAcks.toSorted()).toEqual(messages.map((m) => m.id).toSorted());
    expect(result.retryMessages).toEqual([]);
    expect(after.d1.round_trips - before.d1.round_trips).toBe(1);
    expect(after.shard_rpcs - before.shard_rpcs).toBe(0);
    expect(await storedRows(projectId)).toEqual(asRows(events));
    expect(await shardsHold(events.map((e) => e.id))).toEqual({ seen: 0, buffered: 0 });

    // A redelivery (at least once) adds nothing.
    await redeliverAndCount(messages, batchEnv, projectId, 25);
  });

  it("batch: a failed D1 batch retries every message with backoff and stores nothing", async ({ expect }) => {
    const batchEnv: Env = { ...env, RUNTIME_EVENT_DO_MODE: "batch" };
    const projectId = uid("batch-fail");
    const groups = [makeEvents(projectId, 10), makeEvents(`${projectId}-b`, 10)];
    const messages = telemetryMessages(groups);
    const fired = armFault("d1.batch", { times: 1 });

    const result = await deliver(messages, batchEnv);
    expect(fired()).toBe(1);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((r) => r.msgId).toSorted()).toEqual(messages.map((m) => m.id).toSorted());
    for (const retry of result.retryMessages) expect(retry.delaySeconds).toBeGreaterThan(0);
    expect(await countRows(projectId)).toBe(0);

    // The queue's redelivery goes through.
    await redeliverAndCount(messages, batchEnv, projectId, 10);
  });
});

describe("dedupe end to end", () => {
  it("20% repeated ids across requests → exactly the unique rows in D1, duplicates dropped by the shards", async ({
    expect,
  }) => {
    const projectId = uid("repeats");
    const shardReplies = observeShardIngests();
    const sent: RuntimeEvent[] = [];
    const requests: RuntimeEvent[][] = [];
    for (let r = 0; r < 5; r++) {
      const fresh = makeEvents(projectId, 80).map((e) => ({ ...e, id: `${e.id}-r${r}` }));
      // 20 of every 100 events repeat an id: from earlier requests, or (first request) from itself.
      const pool = r === 0 ? fresh : sent;
      const repeats = Array.from({ length: 20 }, (_, i) => pool[(i * 7 + r) % pool.length]).filter(
        (e): e is RuntimeEvent => e !== undefined,
      );
      sent.push(...fresh);
      requests.push([...fresh, ...repeats]);
    }
    const unique = new Set(requests.flat().map((e) => e.id));
    expect(unique.size).toBe(400);

    const responses = await Promise.all(requests.map((events) => postEvents({ events })));
    for (const response of responses) {
      expect(response.status).toBe(202);
      expect(await response.json()).toEqual({ accepted: 100 });
    }

    expect(await waitForRows(projectId, 400)).toBe(400);
    expect(await shardReplies.waitFor(projectId, 500)).toMatchObject({ stored: 400, duplicates: 100, failed: 0 });
    expect(await countRows(projectId)).toBe(400);
  });

  it("row 2: client retries after a lost 2xx → one row each", async ({ expect }) => {
    const projectId = uid("row2");
    const shardReplies = observeShardIngests();
    const body = { events: makeEvents(projectId, 10) };
    expect((await postEvents(body)).status).toBe(202);
    expect(await waitForRows(projectId, 10)).toBe(10);

    // The 202 never reached the client, which sends the same ids again (after the first flush).
    const retry = await postEvents(body);
    expect(retry.status).toBe(202);
    expect(await shardReplies.waitFor(projectId, 20)).toMatchObject({ stored: 10, duplicates: 10, failed: 0 });
    expect(await countRows(projectId)).toBe(10);
  });
});

describe("concurrent small requests", () => {
  it("share one queue message while a send is in flight: each answered 202 only after it, each event stored once", async ({
    expect,
  }) => {
    const projectId = uid("coalesced");
    const realSendBatch = env.TELEMETRY_QUEUE.sendBatch.bind(env.TELEMETRY_QUEUE);
    const held = Promise.withResolvers<void>();
    const sendBatch = vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch");
    // The first request's send waits, so the others gather behind it.
    sendBatch.mockImplementationOnce(async (messages, options) => {
      await held.promise;
      return realSendBatch(messages, options);
    });
    const start = await ingestSends();
    const first = postEvents({ events: [makeEvent(projectId, `${projectId}-first`)] });
    await vi.waitUntil(async () => (await ingestSends()).requests >= start.requests + 1, WAIT);
    const bodies = Array.from({ length: 10 }, (_, i) => ({
      events: makeEvents(projectId, 1 + (i % 3)).map((event) => ({ ...event, id: `${event.id}-r${i}` })),
    }));
    let answered = 0;
    const rest = bodies.map((body) =>
      postEvents(body).then((response) => {
        answered++;
        return response;
      }),
    );
    await vi.waitUntil(async () => (await ingestSends()).requests >= start.requests + 1 + bodies.length, WAIT);
    // Nobody is answered while the send carrying their events has not even started.
    expect(answered).toBe(0);
    held.resolve();

    const answers = await Promise.all([first, ...rest]);
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 202));
    const total = 1 + bodies.reduce((sum, body) => sum + body.events.length, 0);
    // Two sends in all: the first request's, then one carrying the ten others in one message.
    expect(sendBatch).toHaveBeenCalledTimes(2);
    const shared = [...(sendBatch.mock.calls[1]?.[0] ?? [])];
    expect(shared).toHaveLength(1);
    expect(TelemetryEventsEnvelopeSchema.parse(shared[0]?.body).events).toHaveLength(total - 1);
    const end = await ingestSends();
    expect(end.requests - start.requests).toBe(11);
    expect(end.sends - start.sends).toBe(2);
    expect(end.messages - start.messages).toBe(2);
    expect(await waitForRows(projectId, total)).toBe(total);
    expect(await countRows(projectId)).toBe(total);
  });
});

describe("large requests", () => {
  it("a 1 MiB request of large events is packed within the queue's limits and stored intact", async ({ expect }) => {
    const projectId = uid("mib");
    const events = makeEvents(projectId, 64, { dataBytes: 16_000 });
    const body = { events };
    const bodyBytes = jsonBytes(body);
    expect(bodyBytes).toBeGreaterThan(1_000_000);
    expect(bodyBytes).toBeLessThanOrEqual(1024 * 1024);
    const sendBatch = vi.spyOn(env.TELEMETRY_QUEUE, "sendBatch");

    const response = await postEvents(body);
    expect(response.status).toBe(202);

    const batches = sendBatch.mock.calls.map(([batch]) => [...batch]);
    expect(batches.length).toBeGreaterThan(1);
    const enqueued: string[] = [];
    for (const batch of batches) {
      expect(batch.length).toBeLessThanOrEqual(100);
      const sizes = batch.map((message) => jsonBytes(message.body) + QUEUE_MESSAGE_OVERHEAD);
      for (const size of sizes) expect(size).toBeLessThanOrEqual(QUEUE_MESSAGE_LIMIT);
      expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(QUEUE_BATCH_LIMIT);
      for (const message of batch) {
        expect(message.contentType).toBe("json");
        enqueued.push(...TelemetryEventsEnvelopeSchema.parse(message.body).events.map((e) => e.id));
      }
    }
    expect(enqueued).toEqual(events.map((e) => e.id));

    expect(await waitForRows(projectId, 64)).toBe(64);
    const size = await env.DB.prepare("SELECT SUM(LENGTH(data)) AS bytes FROM runtime_events WHERE project_id = ?")
      .bind(projectId)
      .first<{ bytes: number }>();
    expect(size?.bytes).toBe(events.reduce((sum, e) => sum + JSON.stringify(e.data).length, 0));
  });
});

describe("GET /v1/admin/metrics", () => {
  it("counts the shard RPCs, shard alarms and D1 work an ingest caused", async ({ expect }) => {
    const before = await metrics();
    const projectId = uid("metrics");
    const events = makeEvents(projectId, 150);
    expect((await postEvents({ events })).status).toBe(202);
    expect(await waitForRows(projectId, 150)).toBe(150);
    await vi.waitUntil(async () => (await metrics()).buffered === 0, WAIT);

    const after = await metrics();
    expect(after.shard_count).toBe(config(env).SHARD_COUNT);
    // One RPC per shard holding events of the message; the events are spread over several shards.
    expect(after.shard_rpcs - before.shard_rpcs).toBeGreaterThan(1);
    expect(after.shard_alarms - before.shard_alarms).toBeGreaterThan(0);
    expect(after.d1.round_trips - before.d1.round_trips).toBeGreaterThan(0);
    expect(after.d1.rows_written - before.d1.rows_written).toBeGreaterThanOrEqual(150);
  });
});
