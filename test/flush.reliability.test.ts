/**
 * RELIABILITY.md fault matrix, flush rows (10, 11, 12) for RuntimeEventShard → D1. Each test uses
 * its own shard and holds the shard's alarm (test/helpers.ts `ingestHeld`), then runs it with
 * `runDurableObjectAlarm`, so the schedule is the test's and never races the 200 ms flush delay.
 * "d1.batch" is armed for every D1 batch of this isolate, which is why these tests have a file
 * (and so a Miniflare instance) of their own.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { armFault, disarmFaults } from "../lib/faults.ts";
import type { ShardStatus } from "../durable/runtime-event-shard.do.ts";
import { countRows, ingestHeld, logLines, makeEvents, shard, uid, waitForRows } from "./helpers.ts";

afterEach(() => {
  disarmFaults();
  vi.restoreAllMocks();
});

/** Milliseconds from now until the shard's alarm. */
function alarmIn(status: ShardStatus): number {
  return (status.alarmAt ?? Number.NaN) - Date.now();
}

describe("flush faults", () => {
  it("row 10: flush fails repeatedly (D1 down) → buffer kept, alarm re-armed 1 s, 2 s, 4 s, flushed once D1 is back", async ({
    expect,
  }) => {
    const name = uid("row10-shard");
    const stub = shard(name);
    const projectId = uid("row10");
    const errors = vi.spyOn(console, "error");
    expect((await ingestHeld(stub, makeEvents(projectId, 30))).ok).toBe(true);
    armFault("d1.batch", { error: () => new Error("D1_ERROR: Network connection lost.") });

    for (const [attempt, backoffMs] of [
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
    ] as const) {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const status = await stub.status();
      expect(status.flushFailures).toBe(attempt);
      expect(status.buffered).toBe(30);
      // The alarm was set at the end of the failed run, a few ms ago (half a backoff step of slack).
      expect(alarmIn(status)).toBeGreaterThan(backoffMs - 500);
      expect(alarmIn(status)).toBeLessThanOrEqual(backoffMs);
    }
    expect(await countRows(projectId)).toBe(0);

    // New events during the outage do not pull the alarm in (≥ 100 rows would normally flush now).
    const before = (await stub.status()).alarmAt;
    expect((await stub.ingest(makeEvents(projectId, 120).map((e) => ({ ...e, id: `${e.id}-late` })))).ok).toBe(true);
    expect((await stub.status()).alarmAt).toBe(before);

    const failures = logLines(errors, "shard_flush_failed").filter((line) => line.shard === name);
    expect(failures.map((line) => [line.attempt, line.retry_in_ms, line.rows])).toEqual([
      [1, 1_000, 30],
      [2, 2_000, 30],
      [3, 4_000, 30],
    ]);
    expect(failures.every((line) => line.level === "error" && typeof line.error === "string")).toBe(true);

    disarmFaults();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await countRows(projectId)).toBe(150);
    const recovered = await stub.status();
    expect(recovered).toMatchObject({ buffered: 0, flushFailures: 0 });
    // Exactly one D1 round trip succeeded: the flush after recovery.
    expect(recovered.d1.roundTrips).toBe(1);
    expect(recovered.d1.rowsWritten).toBeGreaterThanOrEqual(150);
  });

  it("row 11: crash between D1 commit and buffer delete → re-flush adds no rows", async ({ expect }) => {
    const name = uid("row11-shard");
    const stub = shard(name);
    const projectId = uid("row11");
    const events = makeEvents(projectId, 40);
    expect((await ingestHeld(stub, events)).ok).toBe(true);
    const fired = armFault("shard.flush.after_d1_commit", { times: 1, when: ({ shard }) => shard === name });

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(fired()).toBe(1);
    // Committed to D1, but the buffer still holds every row and a retry is scheduled.
    expect(await countRows(projectId)).toBe(40);
    const afterCrash = await stub.status();
    expect(afterCrash).toMatchObject({ buffered: 40, flushFailures: 1 });
    expect(alarmIn(afterCrash)).toBeGreaterThan(0);
    const firstReceivedAt = await env.DB.prepare(
      "SELECT MIN(received_at) AS t FROM runtime_events WHERE project_id = ?",
    )
      .bind(projectId)
      .first<{ t: number }>();

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const reflushed = await stub.status();
    expect(reflushed).toMatchObject({ buffered: 0, flushFailures: 0 });
    expect(await countRows(projectId)).toBe(40);
    // The re-flush ran its inserts and D1 kept the first copy of every row.
    expect(reflushed.d1.roundTrips).toBe(2);
    const stillFirst = await env.DB.prepare("SELECT MIN(received_at) AS t FROM runtime_events WHERE project_id = ?")
      .bind(projectId)
      .first<{ t: number }>();
    expect(stillFirst).toEqual(firstReceivedAt);
  });

  it("row 12: a real flush of large events stays within D1's statement limits and stores them intact", async ({
    expect,
  }) => {
    const projectId = uid("row12");
    const stub = shard(uid("row12-shard"));
    // 120 events of ~15 KB: a flush of 1.8 MB, far over one 100 KB statement.
    const events = makeEvents(projectId, 120, { dataBytes: 15_000 });
    expect(await stub.ingest(events.slice(0, 60))).toMatchObject({ ok: true });
    expect(await stub.ingest(events.slice(60))).toMatchObject({ ok: true });

    // ≥ 100 rows: the shard flushes on its own, without the delay.
    expect(await waitForRows(projectId, 120)).toBe(120);
    const status = await stub.status();
    expect(status.buffered).toBe(0);
    expect(status.d1.statements).toBeGreaterThanOrEqual(Math.ceil((120 * 15_000) / 100_000));
    const stored = await env.DB.prepare(
      "SELECT COUNT(*) AS n, SUM(LENGTH(data)) AS bytes FROM runtime_events WHERE project_id = ?",
    )
      .bind(projectId)
      .first<{ n: number; bytes: number }>();
    expect(stored).toEqual({
      n: 120,
      bytes: events.reduce((sum, event) => sum + JSON.stringify(event.data).length, 0),
    });
  });
});
