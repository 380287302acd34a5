/**
 * RuntimeEventShard: when it flushes, and its dedupe ledger. The tests run with FLUSH_DELAY_MS=200
 * (vitest.config.ts); each uses a shard of its own.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, it, vi } from "vitest";
import { config } from "../lib/config.ts";
import type { RuntimeEvent } from "../schemas/runtime-event.schema.ts";
import { countRows, ingestHeld, makeEvent, makeEvents, shard, uid, waitForRows } from "../test/helpers.ts";
import { FLUSH_THRESHOLD_ROWS, type RuntimeEventShard } from "./runtime-event-shard.do.ts";

/**
 * Ingests each group in turn inside the object, recording every alarm the shard sets and when
 * each ingest returned. One Durable Object call, so no alarm can fire between the groups.
 */
function ingestRecordingAlarms(stub: DurableObjectStub<RuntimeEventShard>, groups: RuntimeEvent[][]) {
  return runInDurableObject(stub, async (instance, state) => {
    const setAlarm = vi.spyOn(state.storage, "setAlarm");
    try {
      const steps: { ok: boolean; endedAt: number; alarms: number[]; oldestBufferedAt: number | null }[] = [];
      for (const events of groups) {
        setAlarm.mockClear();
        const { ok } = await instance.ingest(events);
        const endedAt = Date.now();
        const alarms = setAlarm.mock.calls.map(([time]) => Number(time));
        steps.push({ ok, endedAt, alarms, oldestBufferedAt: (await instance.status()).oldestBufferedAt });
      }
      return steps;
    } finally {
      setAlarm.mockRestore();
    }
  });
}

describe("RuntimeEventShard flush schedule", () => {
  it("tests run with FLUSH_DELAY_MS = 200", ({ expect }) => {
    expect(config(env).FLUSH_DELAY_MS).toBe(200);
  });

  it(`flushes as soon as ${FLUSH_THRESHOLD_ROWS} rows wait, without the delay`, async ({ expect }) => {
    const projectId = uid("threshold");
    const events = makeEvents(projectId, FLUSH_THRESHOLD_ROWS);
    const [first, second] = await ingestRecordingAlarms(shard(uid("threshold-shard")), [
      events.slice(0, FLUSH_THRESHOLD_ROWS - 1),
      events.slice(FLUSH_THRESHOLD_ROWS - 1),
    ]);
    expect([first?.ok, second?.ok]).toEqual([true, true]);
    // 99 rows: due FLUSH_DELAY_MS after the oldest.
    expect(first?.alarms).toEqual([(first?.oldestBufferedAt ?? 0) + 200]);
    // The 100th row pulls the alarm in to "now": due by the time ingest returned, not 200 ms later.
    expect(second?.alarms).toHaveLength(1);
    expect(second?.alarms[0]).toBeLessThan(first?.alarms[0] ?? 0);
    expect(second?.alarms[0]).toBeLessThanOrEqual(second?.endedAt ?? 0);
    expect(await waitForRows(projectId, FLUSH_THRESHOLD_ROWS)).toBe(FLUSH_THRESHOLD_ROWS);
  });

  it("otherwise flushes FLUSH_DELAY_MS after the oldest buffered row, on its own alarm", async ({ expect }) => {
    const projectId = uid("delay");
    const stub = shard(uid("delay-shard"));
    const [step] = await ingestRecordingAlarms(stub, [makeEvents(projectId, 3)]);
    expect(step?.oldestBufferedAt).not.toBeNull();
    expect(step?.alarms).toEqual([(step?.oldestBufferedAt ?? 0) + 200]);
    // No runDurableObjectAlarm: the alarm fires by itself.
    expect(await waitForRows(projectId, 3)).toBe(3);
    expect((await stub.status()).buffered).toBe(0);
  });

  it("a later ingest never postpones the pending flush", async ({ expect }) => {
    const projectId = uid("postpone");
    const events = makeEvents(projectId, 4);
    const [first, second] = await ingestRecordingAlarms(shard(uid("postpone-shard")), [
      events.slice(0, 2),
      events.slice(2),
    ]);
    expect(first?.alarms).toHaveLength(1);
    expect(second?.alarms).toEqual([]);
    expect(await waitForRows(projectId, 4)).toBe(4);
  });
});

describe("RuntimeEventShard dedupe ledger", () => {
  it("drops a duplicate id sent in a later batch, and within one batch", async ({ expect }) => {
    const projectId = uid("ledger");
    const stub = shard(uid("ledger-shard"));
    const [a, b, c, d] = ["a", "b", "c", "d"].map((id) => makeEvent(projectId, `${projectId}-${id}`, { id }));
    if (!a || !b || !c || !d) throw new Error("four events");
    expect(await ingestHeld(stub, [a, b])).toEqual({ ok: true, value: { stored: 2, duplicates: 0 } });
    expect(await ingestHeld(stub, [b, c])).toEqual({ ok: true, value: { stored: 1, duplicates: 1 } });
    expect(await ingestHeld(stub, [d, { ...d, type: "changed" }])).toEqual({
      ok: true,
      value: { stored: 1, duplicates: 1 },
    });
    expect(await stub.status()).toMatchObject({ buffered: 4, ledgerSize: 4 });

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await countRows(projectId)).toBe(4);
    // The first copy wins: the duplicate with another type was dropped, not stored over it.
    const row = await env.DB.prepare("SELECT type FROM runtime_events WHERE id = ?")
      .bind(d.id)
      .first<{ type: string }>();
    expect(row?.type).toBe(d.type);
  });

  it("remembers ids after they are flushed and after an eviction", async ({ expect }) => {
    const projectId = uid("ledger-kept");
    const stub = shard(uid("ledger-kept-shard"));
    const events = makeEvents(projectId, 5);
    expect(await ingestHeld(stub, events)).toMatchObject({ ok: true, value: { stored: 5 } });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.status()).toMatchObject({ buffered: 0, ledgerSize: 5 });

    expect(await ingestHeld(stub, events.slice(0, 2))).toEqual({ ok: true, value: { stored: 0, duplicates: 2 } });
    await evictDurableObject(stub);
    expect(await ingestHeld(stub, events)).toEqual({ ok: true, value: { stored: 0, duplicates: 5 } });
    expect((await stub.status()).buffered).toBe(0);
    expect(await countRows(projectId)).toBe(5);
  });
});
