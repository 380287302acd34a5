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
import { RUNTIME_EVENT_SHARD_MIGRATIONS } from "./runtime-event-shard.migrations.ts";
import { ShardTables } from "./shard-kit.ts";

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

describe("RuntimeEventShard ids through JSON", () => {
  it("ids with NUL, quotes, backslashes and line separators survive the ledger and the chunks into D1", async ({
    expect,
  }) => {
    const projectId = uid("odd-ids");
    const stub = shard(uid("odd-ids-shard"));
    const suffixes = ["a\u0000b", "a\u0000c", "\u0000", "é\u2028x", '"q"\\', "a"];
    const events = suffixes.map((suffix) => makeEvent(projectId, `${projectId}-${suffix}`));
    expect(await ingestHeld(stub, events)).toEqual({ ok: true, value: { stored: 6, duplicates: 0 } });
    expect(await ingestHeld(stub, events)).toEqual({ ok: true, value: { stored: 0, duplicates: 6 } });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const stored = await env.DB.prepare("SELECT id FROM runtime_events WHERE project_id = ?")
      .bind(projectId)
      .all<{ id: string }>();
    expect(stored.results.map((row) => row.id).toSorted()).toEqual(events.map((event) => event.id).toSorted());
  });
});

describe("RuntimeEventShard ledger size", () => {
  it("is kept as a count that follows ingests, duplicates and pruning, without scanning the ledger", async ({
    expect,
  }) => {
    const projectId = uid("size");
    const stub = shard(uid("size-shard"));
    const events = makeEvents(projectId, 6);
    await ingestHeld(stub, events.slice(0, 3));
    expect((await stub.status()).ledgerSize).toBe(3); // counted once, then kept
    // Three new ids, plus two already seen.
    await ingestHeld(stub, [...events.slice(2), ...events.slice(0, 1)]);
    expect((await stub.status()).ledgerSize).toBe(6);

    const afterPrune = await runInDurableObject(stub, (_instance, state) => {
      const sql = state.storage.sql;
      // Age two ids past retention, then prune as the alarm would.
      sql.exec("UPDATE seen SET seen_at = 0 WHERE id IN (?, ?)", events[0]?.id ?? "", events[1]?.id ?? "");
      const pruned = new ShardTables(sql).prune(Date.now());
      const kept = sql.exec<{ value: number }>("SELECT value FROM state WHERE key = 'ledger_size'").one().value;
      const counted = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM seen").one().n;
      return { pruned, kept, counted };
    });
    expect(afterPrune).toEqual({ pruned: 2, kept: 4, counted: 4 });
    expect((await stub.status()).ledgerSize).toBe(4);
  });
});

describe("RuntimeEventShard buffer of chunks", () => {
  it("joins the chunks of many small ingests into one D1 statement per ~90 KB", async ({ expect }) => {
    const projectId = uid("chunks");
    const stub = shard(uid("chunks-shard"));
    const events = makeEvents(projectId, 60);
    for (let i = 0; i < events.length; i += 3) await ingestHeld(stub, events.slice(i, i + 3));
    const held = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql.exec<{ chunks: number }>("SELECT COUNT(*) AS chunks FROM chunks").one(),
    );
    expect(held.chunks).toBe(20);
    expect((await stub.status()).buffered).toBe(60);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await countRows(projectId)).toBe(60);
    expect((await stub.status()).d1).toMatchObject({ roundTrips: 1, statements: 1 });
  });

  it("schema version 2 moves events buffered under version 1 into chunks, which flush intact", async ({ expect }) => {
    const projectId = uid("v1");
    const stub = shard(uid("v1-shard"));
    const events = makeEvents(projectId, 4, { dataBytes: 40 });
    // Put the object back at version 1 with four buffered rows, as a shard deployed before it had.
    await runInDurableObject(stub, (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP VIEW buffered_events; DROP TABLE chunks; DROP TABLE seen; DROP TABLE state");
      const v1 = RUNTIME_EVENT_SHARD_MIGRATIONS[0]?.up;
      if (typeof v1 !== "string") throw new Error("version 1 is SQL");
      sql.exec(v1);
      sql.exec("DELETE FROM _schema_migrations WHERE version = 2");
      events.forEach((event, i) =>
        sql.exec(
          "INSERT INTO buffer (id, project_id, type, ts, data, received_at) VALUES (?, ?, ?, ?, ?, ?)",
          event.id,
          event.project_id,
          event.type,
          event.ts,
          JSON.stringify(event.data),
          1_000 + i,
        ),
      );
    });
    // A fresh instance applies version 2 in its constructor.
    await evictDurableObject(stub);
    const moved = await runInDurableObject(stub, (_instance, state) => ({
      version: state.storage.sql.exec<{ v: number }>("SELECT MAX(version) AS v FROM _schema_migrations").one().v,
      buffer: state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'buffer'").toArray().length,
      rows: state.storage.sql
        .exec<{ id: string; received_at: number }>("SELECT id, received_at FROM buffered_events ORDER BY seq")
        .toArray(),
    }));
    expect(moved.version).toBe(2);
    expect(moved.buffer).toBe(0);
    expect(moved.rows).toEqual(events.map((event, i) => ({ id: event.id, received_at: 1_000 + i })));

    expect((await stub.flushNow()).ok).toBe(true);
    const stored = await env.DB.prepare(
      "SELECT id, data, received_at FROM runtime_events WHERE project_id = ? ORDER BY id",
    )
      .bind(projectId)
      .all<{ id: string; data: string; received_at: number }>();
    expect(stored.results).toEqual(
      events
        .map((event, i) => ({ id: event.id, data: JSON.stringify(event.data), received_at: 1_000 + i }))
        .toSorted((a, b) => (a.id < b.id ? -1 : 1)),
    );
  });
});

function typedEvent(project: string, type: string, ts: number, i: number): RuntimeEvent {
  return { ...makeEvent(project, `${project}-${type}-${i}`), type, ts };
}

describe("RuntimeEventShard Analytics Engine points", () => {
  it("writes one point per (project, type) per flush, merged over the flushed chunks", async ({ expect }) => {
    const a = uid("ae-a");
    const b = uid("ae-b");
    const stub = shard(uid("ae-shard"));
    // Three ingests, so three chunks, with (project, type) groups spread over them.
    await ingestHeld(stub, [
      typedEvent(a, "request", 1_000, 1),
      typedEvent(a, "request", 5_000, 2),
      typedEvent(b, "log", 7_000, 3),
    ]);
    await ingestHeld(stub, [typedEvent(a, "request", 3_000, 4), typedEvent(a, "exception", 2_000, 5)]);
    await ingestHeld(stub, [typedEvent(b, "log", 9_000, 6), typedEvent(a, "request", 500, 2)]); // the last is a duplicate

    const writes = vi.spyOn(env.EVENTS_AE, "writeDataPoint");
    try {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const points = writes.mock.calls
        .map(([point]) => JSON.stringify(point))
        .filter((point) => point.includes(a) || point.includes(b))
        .toSorted()
        .map((point): unknown => JSON.parse(point));
      expect(points).toEqual([
        { indexes: [a], blobs: [a, "exception"], doubles: [1, 2_000, 2_000] },
        { indexes: [a], blobs: [a, "request"], doubles: [3, 1_000, 5_000] },
        { indexes: [b], blobs: [b, "log"], doubles: [2, 7_000, 9_000] },
      ]);
    } finally {
      writes.mockRestore();
    }
  });
});
