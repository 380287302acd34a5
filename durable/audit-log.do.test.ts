import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import {
  AUDIT_RETENTION_MS,
  type AuditLog,
  type AuditQuery,
  type AuditRecord,
  auditDay,
  auditDays,
  auditLog,
} from "./audit-log.do.ts";

const DAY_MS = 86_400_000;
/** Far enough ahead that a held alarm never fires during a test; the test runs it itself. */
const HELD_ALARM_MS = 10 * 60_000;

/** An object not named by day (accepts entries of any day), unique per test. */
function scratchLog(): DurableObjectStub<AuditLog> {
  return env.AUDIT_LOG.getByName(`audit-test-${crypto.randomUUID()}`);
}

function entry(id: string, at: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return { id, at, type: "deploy.completed", actor: "system", projectId: "p1", details: "{}", ...overrides };
}

function query(overrides: Partial<AuditQuery> = {}): AuditQuery {
  return {
    from: 0,
    to: Date.now() + DAY_MS,
    types: [],
    typePrefixes: [],
    projectId: null,
    afterAt: null,
    afterId: null,
    limit: 100,
    ...overrides,
  };
}

/** Records and then holds the retention alarm, in one call, so it cannot fire before the test runs it. */
function recordHeld(stub: DurableObjectStub<AuditLog>, entries: AuditRecord[]) {
  return runInDurableObject(stub, async (instance, state) => {
    const result = await instance.record(entries);
    await state.storage.setAlarm(Date.now() + HELD_ALARM_MS);
    return result;
  });
}

describe("AuditLog", () => {
  it("stores each id once, however often it is recorded", async ({ expect }) => {
    const log = scratchLog();
    const now = Date.now();
    const batch = [entry("a", now - 2_000), entry("b", now - 1_000)];
    expect(await log.record(batch)).toEqual({ ok: true, value: { inserted: 2, duplicates: 0 } });
    expect(await log.record(batch)).toEqual({ ok: true, value: { inserted: 0, duplicates: 2 } });
    // Same id, different content (a retried writer): the first one stays.
    expect(await log.record([entry("a", now - 500, { type: "deploy.failed" })])).toEqual({
      ok: true,
      value: { inserted: 0, duplicates: 1 },
    });
    const page = await log.query(query());
    expect(page.ok && page.value.entries.map((e) => [e.id, e.type])).toEqual([
      ["a", "deploy.completed"],
      ["b", "deploy.completed"],
    ]);
    expect((await log.stats()).entries).toBe(2);
  });

  it("refuses a batch with an invalid entry, or an entry of another day, whole", async ({ expect }) => {
    const log = scratchLog();
    const now = Date.now();
    const bad = await log.record([entry("ok", now), entry("bad", now, { details: "[1]" })]);
    expect(bad).toMatchObject({ ok: false, error: { reason: "invalid_entry" } });
    expect(await log.record([entry("t", now, { type: "Not A Type" })])).toMatchObject({
      ok: false,
      error: { reason: "invalid_entry" },
    });
    expect((await log.stats()).entries).toBe(0);

    const today = auditDay(now);
    const dayLog = auditLog(env, today);
    const yesterday = now - DAY_MS;
    expect(await dayLog.record([entry(`y-${crypto.randomUUID()}`, yesterday)])).toMatchObject({
      ok: false,
      error: { reason: "wrong_day" },
    });
  });

  it("filters by time range, exact type, type prefix and project, and pages with a keyset cursor", async ({
    expect,
  }) => {
    const log = scratchLog();
    const t0 = Date.now() - 60_000;
    await log.record([
      entry("e1", t0, { type: "deploy.requested" }),
      entry("e2", t0 + 1_000, { type: "deploy.completed" }),
      entry("e3", t0 + 2_000, { type: "rollback.completed", projectId: "p2" }),
      entry("e4", t0 + 3_000, { type: "admin.action", projectId: null }),
      entry("e5", t0 + 3_000, { type: "enforcement.applied" }),
    ]);
    const ids = async (overrides: Partial<AuditQuery>) => {
      const page = await log.query(query(overrides));
      if (!page.ok) throw new Error(page.error.message);
      return page.value.entries.map((e) => e.id);
    };
    expect(await ids({ from: t0 + 1_000, to: t0 + 3_000 })).toEqual(["e2", "e3"]);
    expect(await ids({ types: ["admin.action", "rollback.completed"] })).toEqual(["e3", "e4"]);
    expect(await ids({ typePrefixes: ["deploy."] })).toEqual(["e1", "e2"]);
    expect(await ids({ types: ["admin.action"], typePrefixes: ["enforcement."] })).toEqual(["e4", "e5"]);
    expect(await ids({ projectId: "p2" })).toEqual(["e3"]);

    const first = await log.query(query({ limit: 2 }));
    expect(first).toMatchObject({ ok: true, value: { more: true } });
    if (!first.ok) return;
    const last = first.value.entries.at(-1);
    const second = await ids({ limit: 10, afterAt: last?.at ?? null, afterId: last?.id ?? null });
    expect(second).toEqual(["e3", "e4", "e5"]);
    expect(await log.query(query({ limit: 0 }))).toMatchObject({ ok: false, error: { reason: "invalid_query" } });
  });

  it("retention: the alarm deletes entries older than 30 days and re-arms for the rest", async ({ expect }) => {
    const log = scratchLog();
    const now = Date.now();
    const old = entry("old", now - AUDIT_RETENTION_MS - 60_000);
    const recent = entry("recent", now - 60_000);
    expect(await recordHeld(log, [old, recent])).toMatchObject({ ok: true, value: { inserted: 2 } });
    expect((await log.stats()).entries).toBe(2);

    expect(await runDurableObjectAlarm(log)).toBe(true);
    const page = await log.query(query());
    expect(page.ok && page.value.entries.map((e) => e.id)).toEqual(["recent"]);
    const stats = await log.stats();
    expect(stats.entries).toBe(1);
    expect(stats.alarmAt).toBe(recent.at + AUDIT_RETENTION_MS);
  });

  it("retention: a day's object 30 days on is emptied by its alarm", async ({ expect }) => {
    // A day of its own (40..400 days ago) so no other test shares the object.
    const dayStart = Math.floor((Date.now() - (40 + Math.floor(Math.random() * 360)) * DAY_MS) / DAY_MS) * DAY_MS;
    const log = auditLog(env, auditDay(dayStart));
    const entries = [
      entry(`d-${crypto.randomUUID()}`, dayStart + 1_000),
      entry(`d-${crypto.randomUUID()}`, dayStart + 2_000),
    ];
    expect(await recordHeld(log, entries)).toMatchObject({ ok: true, value: { inserted: 2 } });
    expect(await log.stats()).toMatchObject({ day: auditDay(dayStart), entries: 2 });

    expect(await runDurableObjectAlarm(log)).toBe(true);
    expect(await log.stats()).toMatchObject({ entries: 0, alarmAt: null });
  });

  it("entries survive an eviction (the schema is read from storage, not memory)", async ({ expect }) => {
    const log = scratchLog();
    await log.record([entry("kept", Date.now())]);
    await evictDurableObject(log);
    expect((await log.stats()).entries).toBe(1);
    expect(await log.record([entry("kept", Date.now())])).toMatchObject({ ok: true, value: { duplicates: 1 } });
  });

  it("auditDays lists every UTC day overlapping [from, to)", ({ expect }) => {
    const start = Date.parse("2026-11-01T23:00:00Z");
    expect(auditDays(start, start + 2 * 3_600_000)).toEqual(["2026-11-01", "2026-11-02"]);
    expect(auditDays(start, start)).toEqual([]);
    expect(auditDays(Date.parse("2026-11-02T00:00:00Z"), Date.parse("2026-11-03T00:00:00Z"))).toEqual(["2026-11-02"]);
  });
});
