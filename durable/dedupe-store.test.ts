import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { hashToShard } from "../lib/hash.ts";
import { DEDUPE_SHARDS, MAX_VALUE_BYTES, dedupeStore } from "./dedupe-store.do.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh object of this test's own, outside the key-hashed ones. */
function scratchStore() {
  return env.DEDUPE_STORE.get(env.DEDUPE_STORE.newUniqueId());
}

describe("DedupeStore", () => {
  it("100 concurrent putIfAbsent on one key insert exactly once, and all see the first value", async ({ expect }) => {
    const store = env.DEDUPE_STORE.getByName(`concurrency-${crypto.randomUUID()}`);
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.putIfAbsent("delivery-1", `d-${i}`, 60_000)),
    );
    const values = results.map((result) => {
      if (result.ok) return result.value;
      throw new Error(`putIfAbsent failed: ${JSON.stringify(result)}`);
    });
    const inserted = values.filter((value) => value.inserted);
    expect(inserted).toHaveLength(1);
    const winner = inserted[0]?.value;
    for (const value of values) expect(value.value).toEqual(winner);
  });

  it("get and forget; a forgotten key can be inserted again", async ({ expect }) => {
    const store = scratchStore();
    expect(await store.get("k")).toBeNull();
    await store.putIfAbsent("k", "1", 60_000);
    expect(await store.get("k")).toMatchObject({ value: "1" });
    expect(await store.forget("k")).toBe(true);
    expect(await store.forget("k")).toBe(false);
    const again = await store.putIfAbsent("k", "2", 60_000);
    expect(again).toMatchObject({ ok: true, value: { inserted: true, value: "2" } });
  });

  it("entries expire: invisible after their TTL and swept by the alarm", async ({ expect }) => {
    const stub = scratchStore();
    await stub.putIfAbsent("short", "a", 20);
    await stub.putIfAbsent("long", "b", 60_000);
    await sleep(40);
    expect(await stub.get("short")).toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.stats()).toMatchObject({ entries: 1 });
    // An expired key is free again.
    expect(await stub.putIfAbsent("short", "c", 60_000)).toMatchObject({ ok: true, value: { inserted: true } });
  });

  it("entries survive an eviction", async ({ expect }) => {
    const stub = env.DEDUPE_STORE.getByName(`evict-${crypto.randomUUID()}`);
    await stub.putIfAbsent("k", "a1", 60_000);
    await evictDurableObject(stub);
    expect(await stub.putIfAbsent("k", "a2", 60_000)).toMatchObject({
      ok: true,
      value: { inserted: false, value: "a1" },
    });
  });

  it("refuses oversized values, bad TTLs and empty keys with a reason", async ({ expect }) => {
    const stub = scratchStore();
    expect(await stub.putIfAbsent("k", "x".repeat(MAX_VALUE_BYTES + 1), 1_000)).toMatchObject({
      ok: false,
      error: { reason: "value_too_large" },
    });
    expect(await stub.putIfAbsent("k", "1", 0)).toMatchObject({ ok: false, error: { reason: "bad_ttl" } });
    expect(await stub.putIfAbsent("", "1", 1_000)).toMatchObject({ ok: false, error: { reason: "key_too_long" } });
  });

  it("maps a key to the same object every time", async ({ expect }) => {
    const key = `webhook:${crypto.randomUUID()}`;
    await dedupeStore(env, key).putIfAbsent(key, "first", 60_000);
    const again = await dedupeStore(env, key).putIfAbsent(key, "second", 60_000);
    expect(again).toMatchObject({ ok: true, value: { inserted: false, value: "first" } });
    expect(dedupeStore(env, key).id.toString()).toBe(
      env.DEDUPE_STORE.idFromName(`dedupe-${hashToShard(key, DEDUPE_SHARDS)}`).toString(),
    );
    expect(DEDUPE_SHARDS).toBeGreaterThan(1);
  });
});
