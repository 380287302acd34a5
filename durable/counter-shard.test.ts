import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { counterShard, counterShardName, counterShardOf } from "../durable/counter-shard.do.ts";
import worker from "../index.ts";
import { reconcileCounters } from "../jobs/reconcile.job.ts";
import { applyFlush, readCounter } from "../lib/counters.d1.ts";
import { D1Client } from "../lib/d1.ts";
import { armFault, disarmFaults } from "../lib/faults.ts";
import type { Increment } from "../schemas/counter.schema.ts";
import { envelope } from "../schemas/envelope.schema.ts";
import { ShardTables } from "./shard-kit.ts";
import { QUEUES } from "../lib/queues.ts";

const BASE = "http://shipyard.test";
const AUTH = { authorization: "Bearer dev-ingest-key" };

const uid = (prefix: string) => `${prefix}-${crypto.randomUUID()}`;

function inc(key: string, field: string, delta: number, id = uid("inc")): Increment {
  return { id, scope: "post", key, field, delta };
}

/** A shard object no other test uses, for assertions about a shard's own state. */
function privateShard() {
  return env.COUNTER_SHARD.getByName(uid("test-shard"));
}

function shardFor(key: string, shardCount = 32) {
  return counterShard(env, counterShardOf("post", key, shardCount));
}

async function d1Values(key: string): Promise<Record<string, number>> {
  const { results } = await env.DB.prepare("SELECT field, value FROM counters WHERE scope = 'post' AND key = ?")
    .bind(key)
    .all<{ field: string; value: number }>();
  return Object.fromEntries(results.map((row) => [row.field, row.value]));
}

async function getCounter(key: string): Promise<{ values: Record<string, number> }> {
  const response = await exports.default.fetch(`${BASE}/v1/counters/post/${encodeURIComponent(key)}`, {
    headers: AUTH,
  });
  if (response.status !== 200) throw new Error(`GET counter → ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Runs the counters consumer on `increments` (one message each chunk) with an env variant. */
async function consume(
  increments: Increment[][],
  vars: Partial<Record<"COUNTER_DO_MODE" | "SHARD_COUNT", string>> = {},
) {
  const batch = createMessageBatch(
    QUEUES.counters.name,
    increments.map((chunk, i) => ({
      id: uid(`msg${i}`),
      timestamp: new Date(),
      attempts: 1,
      body: envelope("counters.increments", { increments: chunk }),
    })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...vars }, ctx);
  return getQueueResult(batch, ctx);
}

/** Flushes every shard the keys live on (under each shard count given). */
async function flushShards(keys: string[], counts: number[] = [32]) {
  const names = new Set(keys.flatMap((key) => counts.map((n) => counterShardName(counterShardOf("post", key, n)))));
  for (const name of names) await env.COUNTER_SHARD.getByName(name).reconcile(0);
}

afterEach(() => disarmFaults());

describe("counters", () => {
  it("POST /v1/counters → 202, and GET reads the total (repeats applied once) end to end", async ({ expect }) => {
    const key = uid("post");
    const increments = Array.from({ length: 30 }, (_, i) => inc(key, i % 2 ? "likes" : "views", 1, `${key}-${i}`));
    const repeats = increments.slice(0, 10);
    for (const body of [increments, repeats]) {
      const response = await exports.default.fetch(`${BASE}/v1/counters`, {
        method: "POST",
        headers: { ...AUTH, "content-type": "application/json" },
        body: JSON.stringify({ increments: body }),
      });
      expect(response.status).toBe(202);
    }
    await vi.waitUntil(async () => (await getCounter(key)).values.views === 15, { timeout: 10_000, interval: 50 });
    expect((await getCounter(key)).values).toEqual({ views: 15, likes: 15 });
    // And it reaches D1 by the shard's own alarm (FLUSH_DELAY_MS=200 in tests).
    await vi.waitUntil(async () => (await d1Values(key)).views === 15, { timeout: 10_000, interval: 100 });
    expect(await d1Values(key)).toEqual({ views: 15, likes: 15 });
  });

  it("reads include deltas still held by the shard (read-your-writes) before any flush", async ({ expect }) => {
    const key = uid("ryw");
    const stub = privateShard();
    expect(await stub.apply([inc(key, "n", 4), inc(key, "n", 3)])).toMatchObject({ ok: true, value: { stored: 2 } });
    expect(await stub.read("post", key)).toEqual({ n: 7 });
    expect(await d1Values(key)).toEqual({});
  });

  it("a value never goes below 0", async ({ expect }) => {
    const key = uid("clamp");
    const result = await consume([[inc(key, "n", 5)], [inc(key, "n", -9)]]);
    expect(result.explicitAcks).toHaveLength(2);
    await flushShards([key]);
    expect(await d1Values(key)).toEqual({ n: 0 });
    await consume([[inc(key, "n", 2)]]);
    await flushShards([key]);
    expect(await d1Values(key)).toEqual({ n: 2 });
  });

  it("row 11: crash between the D1 commit and the buffer delete → the re-flush changes nothing", async ({ expect }) => {
    const key = uid("crash");
    const name = uid("test-shard");
    const stub = env.COUNTER_SHARD.getByName(name);
    await stub.apply([inc(key, "n", 5), inc(key, "m", 2)]);
    // Only this shard's flush: other shards of this file flush on their own alarms meanwhile, and one
    // of them taking the single firing made this test fail under load.
    const fired = armFault("shard.flush.after_d1_commit", { times: 1, when: (context) => context.shard === name });
    await runDurableObjectAlarm(stub);
    expect(fired()).toBe(1);
    expect(await d1Values(key)).toEqual({ n: 5, m: 2 });
    expect(await stub.status()).toMatchObject({ inflight: 2, flushFailures: 1 });
    // Reads are still exact while the committed flush is not yet cleared.
    expect(await stub.read("post", key)).toEqual({ n: 5, m: 2 });
    await runDurableObjectAlarm(stub);
    expect(await d1Values(key)).toEqual({ n: 5, m: 2 });
    expect(await stub.status()).toMatchObject({ inflight: 0, pending: 0, flushFailures: 0 });
  });

  it("row 7 (counters): an increment delivered after the dedupe window → D1's increment ledger applies it once", async ({
    expect,
  }) => {
    const key = uid("row7");
    const stub = privateShard();
    const increments = [inc(key, "n", 5), inc(key, "n", 2)];
    await stub.apply(increments);
    await runDurableObjectAlarm(stub);
    expect(await d1Values(key)).toEqual({ n: 7 });

    // Days later the shard's hourly prune has dropped these ids from its ledger.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("UPDATE seen SET seen_at = 0");
      expect(new ShardTables(state.storage.sql).prune(Date.now())).toBe(2);
    });
    // The same increments again: the shard takes them as new, and D1's ledger of ids refuses them.
    expect(await stub.apply(increments)).toMatchObject({ ok: true, value: { stored: 2 } });
    await runDurableObjectAlarm(stub);
    expect(await d1Values(key)).toEqual({ n: 7 });
    expect(await stub.status()).toMatchObject({ pending: 0, inflight: 0, flushFailures: 0 });
  });

  it("row 10 (counters): D1 down → increments kept with backoff, applied once when D1 is back", async ({ expect }) => {
    const key = uid("d1down");
    const stub = privateShard();
    await stub.apply([inc(key, "n", 1), inc(key, "n", 1)]);
    armFault("d1.batch");
    await runDurableObjectAlarm(stub);
    await runDurableObjectAlarm(stub);
    const status = await stub.status();
    expect(status).toMatchObject({ inflight: 2, flushFailures: 2 });
    expect((status.alarmAt ?? 0) - Date.now()).toBeGreaterThan(1_000);
    disarmFaults();
    await runDurableObjectAlarm(stub);
    expect(await d1Values(key)).toEqual({ n: 2 });
  });

  it("a repeated flush id rolls back: applyFlush twice with one id adds once", async ({ expect }) => {
    const key = uid("flush");
    const d1 = new D1Client(env.DB);
    const increments = [inc(key, "n", 3)];
    expect(await applyFlush(d1, `f-${key}`, "test", increments)).toBe("applied");
    expect(await applyFlush(d1, `f-${key}`, "test", increments)).toBe("already_applied");
    // A different flush carrying an increment id already applied adds nothing either.
    expect(await applyFlush(d1, `g-${key}`, "test", increments)).toBe("applied");
    expect(await readCounter(d1, "post", key)).toEqual({ n: 3 });
  });

  it("row 13: SHARD_COUNT 32 → 64 mid-stream with redelivered ids → nothing lost, nothing doubled", async ({
    expect,
  }) => {
    const keys = Array.from({ length: 12 }, () => uid("reshard"));
    const first = keys.map((key) => inc(key, "n", 1, `${key}-a`));
    const second = keys.map((key) => inc(key, "n", 10, `${key}-b`));
    await consume([first, second], { SHARD_COUNT: "32" });
    await flushShards(keys, [32]);
    // After the change, the same increments are redelivered (a client retry) and new ones arrive.
    const moved = keys.filter((key) => counterShardOf("post", key, 32) !== counterShardOf("post", key, 64));
    expect(moved.length).toBeGreaterThan(0);
    const third = keys.map((key) => inc(key, "n", 100, `${key}-c`));
    await consume([second, third], { SHARD_COUNT: "64" });
    await flushShards(keys, [32, 64]);
    for (const key of keys) expect(await d1Values(key), key).toEqual({ n: 111 });
  });

  it("off mode writes each increment directly, exactly once, and GET reads D1", async ({ expect }) => {
    const key = uid("off");
    const increments = [inc(key, "n", 2), inc(key, "n", 3)];
    const result = await consume([increments, increments], { COUNTER_DO_MODE: "off" });
    expect(result.explicitAcks).toHaveLength(2);
    expect(await d1Values(key)).toEqual({ n: 5 });
    // The key's shard holds nothing of it: its read adds nothing to D1's values.
    expect(await shardFor(key).read("post", key)).toEqual({ n: 5 });
  });

  it("shadow mode: the direct path writes, the shard acknowledges without holding anything", async ({ expect }) => {
    const key = uid("shadow");
    const increments = [inc(key, "n", 2), inc(key, "n", 3)];
    const result = await consume([increments], { COUNTER_DO_MODE: "shadow" });
    expect(result.explicitAcks).toHaveLength(1);
    expect(await d1Values(key)).toEqual({ n: 5 });
    expect(await shardFor(key).read("post", key)).toEqual({ n: 5 });
    // A redelivery of the same message changes nothing.
    await consume([increments], { COUNTER_DO_MODE: "shadow" });
    expect(await d1Values(key)).toEqual({ n: 5 });
  });

  it("the reconcile job flushes stranded shards and reports them", async ({ expect }) => {
    const key = uid("stranded");
    const stub = privateShard();
    await stub.apply([inc(key, "n", 9)]);
    expect(await stub.reconcile(60_000)).toEqual({ stranded: 0, flushed: 0, ok: true });
    expect(await stub.reconcile(0)).toEqual({ stranded: 1, flushed: 1, ok: true });
    expect(await d1Values(key)).toEqual({ n: 9 });
    const summary = await reconcileCounters(env);
    expect(summary).toMatchObject({ shards: 32, failed: 0 });
  });

  it("poison counter messages go to the dead-letter archive with the reason; the rest are applied", async ({
    expect,
  }) => {
    const key = uid("poison");
    const poison: unknown = { v: 1, type: "counters.increments", increments: "nope" };
    const batch = createMessageBatch(QUEUES.counters.name, [
      {
        id: uid("bad"),
        timestamp: new Date(),
        attempts: 1,
        body: poison,
      },
      {
        id: uid("good"),
        timestamp: new Date(),
        attempts: 1,
        body: envelope("counters.increments", { increments: [inc(key, "n", 1)] }),
      },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toHaveLength(2);
    const badId = batch.messages[0]?.id;
    await vi.waitUntil(
      async () =>
        (await env.DB.prepare("SELECT last_error FROM dead_letters WHERE message_id = ?").bind(badId).first()) !== null,
      { timeout: 10_000, interval: 100 },
    );
    const row = await env.DB.prepare("SELECT source_queue, last_error FROM dead_letters WHERE message_id = ?")
      .bind(badId)
      .first<{ source_queue: string; last_error: string }>();
    expect(row?.source_queue).toBe(QUEUES.counters.name);
    expect(row?.last_error).toMatch(/increments/);
  });

  it("GET /v1/counters rejects an unknown scope with 400 and needs an ingest key", async ({ expect }) => {
    const bad = await exports.default.fetch(`${BASE}/v1/counters/nope/x`, { headers: AUTH });
    expect(bad.status).toBe(400);
    const anon = await exports.default.fetch(`${BASE}/v1/counters/post/x`);
    expect(anon.status).toBe(401);
  });
});
