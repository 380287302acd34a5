/**
 * The KV API cases run against both a real KV binding (`env.TEST_KV`, vitest.config.ts) and the
 * local shim inside a tenant (test/kv.e2e.test.ts embeds this function's source), so the shim is
 * held to what the real binding does. Self-contained: it is serialised with `toString()`. Cursors
 * are opaque and differ, so a page is reported by its keys and whether a cursor came with it.
 */
// oxlint-disable unicorn/consistent-function-scoping
export async function kvCases(kv: KVNamespace, prefix: string): Promise<unknown> {
  const out: Record<string, unknown> = {};
  const errorOf = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return "no error";
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  };
  const key = (name: string) => `${prefix}${name}`;
  await kv.put(key("a"), "hello");
  await kv.put(key("b"), JSON.stringify({ n: 1, list: [true, null] }), { metadata: { owner: "x", n: 2 } });
  await kv.put(key("c"), new Uint8Array([0, 1, 255]));
  await kv.put(key("d"), "expiring", { expirationTtl: 3600 });
  out["text"] = await kv.get(key("a"));
  out["text_type"] = await kv.get(key("a"), "text");
  out["json"] = await kv.get(key("b"), "json");
  out["json_options"] = await kv.get(key("b"), { type: "json" });
  out["bytes"] = [...new Uint8Array((await kv.get(key("c"), "arrayBuffer")) ?? new ArrayBuffer(0))];
  const stream = await kv.get(key("a"), "stream");
  out["stream"] = stream === null ? null : await new Response(stream).text();
  out["missing"] = await kv.get(key("missing"));
  out["missing_with_metadata"] = await kv.getWithMetadata(key("missing"));
  const withMetadata = await kv.getWithMetadata(key("b"), "json");
  out["with_metadata"] = { value: withMetadata.value, metadata: withMetadata.metadata };
  const without = await kv.getWithMetadata(key("a"));
  out["without_metadata"] = { value: without.value, metadata: without.metadata };
  const all = await kv.list({ prefix });
  out["list"] = {
    names: all.keys.map((k) => k.name.slice(prefix.length)),
    metadata: all.keys.map((k) => k.metadata ?? null),
    expiring: all.keys.map((k) => typeof k.expiration === "number"),
    complete: all.list_complete,
  };
  const first = await kv.list({ prefix, limit: 3 });
  const rest = first.list_complete ? null : await kv.list({ prefix, limit: 3, cursor: first.cursor });
  out["pages"] = {
    first: first.keys.map((k) => k.name.slice(prefix.length)),
    first_complete: first.list_complete,
    has_cursor: !first.list_complete && typeof first.cursor === "string",
    rest: rest?.keys.map((k) => k.name.slice(prefix.length)) ?? null,
    rest_complete: rest?.list_complete ?? null,
  };
  out["prefix"] = (await kv.list({ prefix: key("b") })).keys.map((k) => k.name.slice(prefix.length));
  await kv.put(key("a"), "overwritten");
  out["overwritten"] = await kv.get(key("a"));
  await kv.delete(key("a"));
  await kv.delete(key("never-there"));
  out["deleted"] = await kv.get(key("a"));
  out["short_ttl"] = (await errorOf(() => kv.put(key("e"), "x", { expirationTtl: 10 }))).slice(0, 60);
  out["after_delete"] = (await kv.list({ prefix })).keys.map((k) => k.name.slice(prefix.length));
  return out;
}
