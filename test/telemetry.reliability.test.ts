/**
 * RELIABILITY.md fault matrix, consumer and shard rows, for the telemetry path. Faults are injected
 * with lib/faults.ts (the tests share the isolate with the Worker and its Durable Objects) or with
 * the cloudflare:test helpers; batches are driven through the Worker's real queue handler.
 */
import {
  abortAllDurableObjects,
  createExecutionContext,
  createMessageBatch,
  evictDurableObject,
  getQueueResult,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { telemetryShardName } from "../durable/runtime-event-shard.do.ts";
import { ShardTables } from "../durable/shard-kit.ts";
import { armFault, disarmFaults } from "../lib/faults.ts";
import { hashToShard } from "../lib/hash.ts";
import worker from "../index.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import {
  WAIT,
  countRows,
  deliver,
  eventsInShard,
  ingestHeld,
  makeEvent,
  makeEvents,
  observedBatch,
  observeShardIngests,
  redeliver,
  shard,
  shardCount,
  shardHolds,
  shardOf,
  shardsHold,
  telemetryMessages,
  uid,
  waitForRows,
} from "./helpers.ts";
import { QUEUES } from "../lib/queues.ts";

afterEach(() => {
  disarmFaults();
  vi.restoreAllMocks();
});

/** Three distinct telemetry shard indexes, different for each project id. */
function threeShards(projectId: string): [number, number, number] {
  const first = hashToShard(projectId, shardCount());
  return [first, (first + 1) % shardCount(), (first + 2) % shardCount()];
}

function ids(events: readonly { id: string }[]): string[] {
  return events.map((event) => event.id);
}

/** Ages `ids` past the ledger's retention in their shards and prunes, as the hourly alarm would. */
async function forgetAsPruneWould(eventIds: readonly string[]): Promise<void> {
  for (const [name, group] of Map.groupBy(eventIds, shardOf)) {
    await runInDurableObject(shard(name), (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec("UPDATE seen SET seen_at = 0 WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(group));
      new ShardTables(sql).prune(Date.now());
    });
  }
}

type DeadLetterRow = {
  source_queue: string;
  message_id: string;
  envelope_type: string | null;
  project_id: string | null;
  attempts: number;
  last_error: string;
  body: string;
};

async function deadLetters(messageIds: readonly string[]): Promise<DeadLetterRow[]> {
  const { results } = await env.DB.prepare(
    `SELECT source_queue, message_id, envelope_type, project_id, attempts, last_error, body FROM dead_letters
     WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id`,
  )
    .bind(JSON.stringify(messageIds))
    .all<DeadLetterRow>();
  return results;
}

describe("telemetry fault matrix", () => {
  it("row 3: consumer throws after k messages → unacked messages come back; final state exact", async ({ expect }) => {
    const projectId = uid("row3");
    const shardReplies = observeShardIngests();
    const groups = Array.from({ length: 6 }, (_, m) =>
      makeEvents(projectId, 5).map((event) => ({ ...event, id: `${event.id}-m${m}` })),
    );
    const messages = telemetryMessages(groups);
    const k = 2;
    const batch = createMessageBatch(QUEUES.telemetry.name, messages);
    const ctx = createExecutionContext();
    // The invocation dies while acking message k (after the shards stored every event).
    await expect(worker.queue(observedBatch(batch, new Map(), k), env)).rejects.toThrow("invocation crashed");
    const first = await getQueueResult(batch, ctx);
    expect(first.ackAll).toBe(false);
    expect(first.explicitAcks).toEqual(messages.slice(0, k).map((m) => m.id));

    // The queue redelivers every message not acked; their events were already stored by the shards.
    const unacked = messages.slice(k).map((m) => m.id);
    const second = await deliver(redeliver(messages, unacked));
    expect(second.explicitAcks.toSorted()).toEqual(unacked.toSorted());
    expect(second.retryMessages).toEqual([]);

    expect(await waitForRows(projectId, 30)).toBe(30);
    expect(shardReplies.totals(projectId)).toMatchObject({ stored: 30, duplicates: (6 - k) * 5, failed: 0 });
  });

  it("row 4: one shard call fails → only that shard's messages retried (with delay), others acked", async ({
    expect,
  }) => {
    const projectId = uid("row4");
    const [failing, healthy, other] = threeShards(projectId);
    const mixedHealthy = eventsInShard(projectId, other, 2, "mixed");
    const messages = telemetryMessages([
      eventsInShard(projectId, failing, 3, "a"),
      eventsInShard(projectId, healthy, 3, "b"),
      [...eventsInShard(projectId, failing, 1, "c"), ...mixedHealthy],
      eventsInShard(projectId, other, 2, "d"),
    ]);
    const [onFailing, onHealthy, mixed, onOther] = messages.map((m) => m.id);
    const fired = armFault("shard.ingest", { when: ({ shard }) => shard === telemetryShardName(failing) });

    const result = await deliver(messages);
    expect(fired()).toBe(1);
    expect(new Set(result.explicitAcks)).toEqual(new Set([onHealthy, onOther]));
    expect(new Set(result.retryMessages.map((r) => r.msgId))).toEqual(new Set([onFailing, mixed]));
    for (const retry of result.retryMessages) {
      // Attempt 1 of a plain failure: 2 s backoff with jitter, i.e. 1..2 s, never 0.
      expect(retry.delaySeconds).toBeGreaterThanOrEqual(1);
      expect(retry.delaySeconds).toBeLessThanOrEqual(2);
    }
    // The healthy half of the mixed message is stored; the failing shard stored nothing.
    expect(await shardHolds(telemetryShardName(other), ids(mixedHealthy))).toEqual({ seen: 2, buffered: 2 });

    disarmFaults();
    const retried = await deliver(redeliver(messages, [onFailing ?? "", mixed ?? ""]));
    expect(retried.retryMessages).toEqual([]);
    expect(retried.explicitAcks).toHaveLength(2);
    expect(await waitForRows(projectId, 11)).toBe(11);
  });

  it("row 5: shard overloaded → retried with a longer backoff that grows per attempt, no tight loop", async ({
    expect,
  }) => {
    const projectId = uid("row5");
    const [overloaded, failing, healthy] = threeShards(projectId);
    const messages = telemetryMessages([
      eventsInShard(projectId, overloaded, 2, "a"),
      eventsInShard(projectId, failing, 2, "b"),
      eventsInShard(projectId, healthy, 2, "c"),
    ]);
    const [onOverloaded, onFailing, onHealthy] = messages.map((m) => m.id);
    const overloadedCalls = armFault("consumer.shard_rpc", {
      when: ({ shard }) => shard === telemetryShardName(overloaded),
      error: () =>
        Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true }),
    });
    armFault("shard.ingest", { when: ({ shard }) => shard === telemetryShardName(failing) });

    // [attempt, overloaded delay range, plain failure delay range] in seconds: base 10 s vs 2 s,
    // doubling per attempt with jitter in [ceiling / 2, ceiling], capped at 15 min vs 5 min.
    const schedule: [number, [number, number], [number, number]][] = [
      [1, [5, 10], [1, 2]],
      [4, [40, 80], [8, 16]],
      [30, [450, 900], [150, 300]],
    ];
    for (const [attempts, [overMin, overMax], [plainMin, plainMax]] of schedule) {
      const result = await deliver(messages.map((m) => ({ ...m, attempts })));
      expect(result.explicitAcks).toEqual([onHealthy]);
      const delay = new Map(result.retryMessages.map((r) => [r.msgId, r.delaySeconds ?? 0]));
      expect(new Set(delay.keys())).toEqual(new Set([onOverloaded, onFailing]));
      expect(delay.get(onOverloaded ?? "")).toBeGreaterThanOrEqual(overMin);
      expect(delay.get(onOverloaded ?? "")).toBeLessThanOrEqual(overMax);
      expect(delay.get(onFailing ?? "")).toBeGreaterThanOrEqual(plainMin);
      expect(delay.get(onFailing ?? "")).toBeLessThanOrEqual(plainMax);
    }
    // One shard call per delivery: the consumer hands the retry to the queue instead of looping.
    expect(overloadedCalls()).toBe(schedule.length);
  });

  it("row 6: poison message → archived as a dead letter with its reason, the rest of the batch processed", async ({
    expect,
  }) => {
    const projectId = uid("row6");
    const good = telemetryMessages([
      makeEvents(projectId, 3),
      makeEvents(projectId, 2).map((e) => ({ ...e, id: `${e.id}-b` })),
    ]);
    const valid = envelope("telemetry.events", { events: [makeEvent(projectId, uid("e"))] });
    const poisonBodies: unknown[] = [
      { ...valid, v: 2 },
      { ...valid, events: [{ ...makeEvent(projectId, uid("e")), ts: "yesterday" }] },
      { ...valid, type: "telemetry.unknown" },
      "not an envelope",
    ];
    const poison = poisonBodies.map((body) => ({ id: uid("poison"), timestamp: new Date(), attempts: 1, body }));
    const result = await deliver([good[0], ...poison, good[1]].filter((m) => m !== undefined));

    // Poison is acked (never retried) once the dead-letter queue has it; the good messages are stored.
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.toSorted()).toEqual([...good, ...poison].map((m) => m.id).toSorted());
    expect(await waitForRows(projectId, 5)).toBe(5);

    // The real dead-letter consumer archives them into D1, with the reason.
    const poisonIds = poison.map((m) => m.id);
    await vi.waitUntil(async () => (await deadLetters(poisonIds)).length === poison.length, WAIT);
    const archived = new Map((await deadLetters(poisonIds)).map((row) => [row.message_id, row]));
    poison.forEach((message) => {
      const row = archived.get(message.id);
      expect(row).toMatchObject({ source_queue: QUEUES.telemetry.name, attempts: 1 });
      expect(row?.last_error).toMatch(/^envelope failed its schema/);
      expect(JSON.parse(row?.body ?? "null")).toEqual(message.body);
    });
    expect(archived.get(poison[0]?.id ?? "")?.last_error).toMatch(/v/);
    expect(archived.get(poison[1]?.id ?? "")?.last_error).toMatch(/events\[0\]\.ts|ts/);
    expect(archived.get(poison[1]?.id ?? "")).toMatchObject({
      envelope_type: "telemetry.events",
      project_id: projectId,
    });
  });

  it("row 6: poison sent on the real queue is dead-lettered, its batch-mate stored", async ({ expect }) => {
    const projectId = uid("row6-queue");
    const events = makeEvents(projectId, 4);
    const poison = envelope("telemetry.events", { events: [makeEvent(projectId, uid("e"))] });
    await env.TELEMETRY_QUEUE.sendBatch([
      { body: { ...poison, events: [{ ...poison.events[0], ts: "yesterday" }] }, contentType: "json" },
      { body: envelope("telemetry.events", { events }), contentType: "json" },
    ]);
    expect(await waitForRows(projectId, 4)).toBe(4);
    const row = await vi.waitUntil(
      () =>
        env.DB.prepare("SELECT source_queue, attempts, last_error, body FROM dead_letters WHERE project_id = ?")
          .bind(projectId)
          .first<DeadLetterRow>(),
      WAIT,
    );
    expect(row).toMatchObject({ source_queue: QUEUES.telemetry.name, attempts: 1 });
    expect(row.last_error).toMatch(/^envelope failed its schema/);
    expect(JSON.parse(row.body)).toMatchObject({ id: poison.id, events: [{ ts: "yesterday" }] });
  });

  it("row 7: a duplicate delivered after the dedupe window → D1's primary key still keeps one row", async ({
    expect,
  }) => {
    const projectId = uid("row7");
    const events = makeEvents(projectId, 12);
    const first = telemetryMessages([events]);
    expect((await deliver(first)).explicitAcks).toEqual(first.map((m) => m.id));
    expect(await waitForRows(projectId, 12)).toBe(12);
    await vi.waitUntil(async () => (await shardsHold(ids(events))).buffered === 0, WAIT);

    // Days later the shards' hourly prune has dropped these ids from their ledgers.
    await forgetAsPruneWould(ids(events));
    expect(await shardsHold(ids(events))).toEqual({ seen: 0, buffered: 0 });

    // The same events again: the shards take them as new and flush them; D1 keeps one row each.
    const late = telemetryMessages([events]);
    expect((await deliver(late)).explicitAcks).toEqual(late.map((m) => m.id));
    await vi.waitUntil(async () => {
      const held = await shardsHold(ids(events));
      return held.seen === 12 && held.buffered === 0;
    }, WAIT);
    expect(await countRows(projectId)).toBe(12);
  });

  it("row 8: shard evicted after accepting → buffered rows still there and flushed", async ({ expect }) => {
    const projectId = uid("row8");
    const stub = shard(uid("row8-shard"));
    const events = makeEvents(projectId, 7);
    expect(await ingestHeld(stub, events)).toEqual({ ok: true, value: { stored: 7, duplicates: 0 } });

    await evictDurableObject(stub);
    const status = await stub.status();
    expect(status.buffered).toBe(7);
    expect(status.ledgerSize).toBe(7);
    expect(status.alarmAt).not.toBeNull();

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await waitForRows(projectId, 7)).toBe(7);
    expect((await stub.status()).buffered).toBe(0);
    // The ledger survived too: a redelivery after the eviction is recognised.
    expect(await stub.ingest(events)).toEqual({ ok: true, value: { stored: 0, duplicates: 7 } });
  });

  it("row 8: shard crashed (aborted) after accepting → buffered rows still there and flushed", async ({ expect }) => {
    const projectId = uid("row8-abort");
    const name = uid("row8-abort-shard");
    const events = makeEvents(projectId, 5);
    expect(await ingestHeld(shard(name), events)).toEqual({ ok: true, value: { stored: 5, duplicates: 0 } });

    await abortAllDurableObjects();
    // Stubs of an aborted object are broken; a new one reaches a fresh instance on the same storage.
    const stub = shard(name);
    expect((await stub.status()).buffered).toBe(5);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await waitForRows(projectId, 5)).toBe(5);
    expect(await stub.ingest(events)).toEqual({ ok: true, value: { stored: 0, duplicates: 5 } });
  });

  it("row 9: crash inside the shard's write → error reply, nothing of the batch kept (buffer or ledger)", async ({
    expect,
  }) => {
    const name = uid("row9-shard");
    const stub = shard(name);
    const events = makeEvents(uid("row9"), 6);
    armFault("shard.ingest.after_write", { times: 1, when: ({ shard }) => shard === name });

    const failed = await stub.ingest(events);
    expect(failed).toMatchObject({ ok: false, error: { reason: "storage_failed" } });
    expect(await shardHolds(name, ids(events))).toEqual({ seen: 0, buffered: 0 });
    // Had the ledger kept the ids, the retry would call them duplicates and lose them.
    expect(await stub.ingest(events)).toEqual({ ok: true, value: { stored: 6, duplicates: 0 } });
  });

  it("row 9: crash before the shard replied → consumer retries the message; no partial batch visible", async ({
    expect,
  }) => {
    const projectId = uid("row9-consumer");
    const [crashing, healthy] = threeShards(projectId);
    const onCrashing = eventsInShard(projectId, crashing, 5);
    const messages = telemetryMessages([[...onCrashing, ...eventsInShard(projectId, healthy, 2)]]);
    armFault("shard.ingest.after_write", { when: ({ shard }) => shard === telemetryShardName(crashing) });

    const result = await deliver(messages);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toEqual([{ msgId: messages[0]?.id, delaySeconds: expect.any(Number) }]);
    expect(await shardHolds(telemetryShardName(crashing), ids(onCrashing))).toEqual({ seen: 0, buffered: 0 });

    disarmFaults();
    const retried = await deliver(redeliver(messages, ids(messages)));
    expect(retried.explicitAcks).toEqual(ids(messages));
    expect(await waitForRows(projectId, 7)).toBe(7);
  });
});
