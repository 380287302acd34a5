/**
 * The R2 API cases run against both a real R2 binding (`env.TEST_R2`, vitest.config.ts) and the
 * local shim inside a tenant (test/r2.e2e.test.ts embeds this function's source), so the shim is
 * held to what the real binding does. Self-contained: it is serialised with `toString()`.
 * Versions, upload times and cursors differ between two buckets, so an object is reported by
 * what does not (key, size, etag, metadata, and that a version and a date are there).
 */
// oxlint-disable unicorn/consistent-function-scoping
export async function r2Cases(bucket: R2Bucket, prefix: string): Promise<unknown> {
  const out: Record<string, unknown> = {};
  const key = (name: string) => `${prefix}${name}`;
  const errorOf = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return "no error";
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  };
  const shape = (object: R2Object | null) =>
    object === null
      ? null
      : {
          key: object.key.slice(prefix.length),
          size: object.size,
          etag: object.etag,
          httpEtag: object.httpEtag,
          httpMetadata: object.httpMetadata,
          customMetadata: object.customMetadata,
          md5: (object.checksums.toJSON() as { md5?: string }).md5 ?? null,
          has_version: typeof object.version === "string" && object.version.length > 0,
          uploaded_is_date: object.uploaded instanceof Date,
          has_body: "body" in object,
          range: object.range ?? null,
        };
  const put = await bucket.put(key("a.txt"), "hello world", {
    httpMetadata: { contentType: "text/plain", cacheControl: "max-age=60", contentLanguage: "en" },
    customMetadata: { owner: "tenant", n: "2" },
  });
  out["put"] = shape(put);
  await bucket.put(key("b.json"), JSON.stringify({ n: 1, list: [true, null] }), {
    httpMetadata: new Headers({ "content-type": "application/json" }),
  });
  await bucket.put(key("dir/c.bin"), new Uint8Array([0, 1, 255]));
  await bucket.put(key("dir/sub/d.txt"), new Blob(["blob body"]));
  await bucket.put(key("e.txt"), new Response("streamed").body);
  const got = await bucket.get(key("a.txt"));
  out["get"] = shape(got);
  out["get_text"] = got === null ? null : await got.text();
  const json = await bucket.get(key("b.json"));
  out["get_json"] = json === null ? null : await json.json();
  out["json_type"] = json?.httpMetadata?.contentType ?? null;
  const bin = await bucket.get(key("dir/c.bin"));
  out["get_bytes"] = bin === null ? null : [...new Uint8Array(await bin.arrayBuffer())];
  const blob = await bucket.get(key("dir/sub/d.txt"));
  out["get_stream"] = blob === null ? null : await new Response(blob.body).text();
  const streamed = await bucket.get(key("e.txt"));
  out["put_stream"] = streamed === null ? null : await streamed.text();
  out["head"] = shape(await bucket.head(key("a.txt")));
  out["missing_get"] = await bucket.get(key("missing"));
  out["missing_head"] = await bucket.head(key("missing"));
  const headers = new Headers();
  got?.writeHttpMetadata(headers);
  out["write_http_metadata"] = Object.fromEntries(headers);
  const ranged = await bucket.get(key("a.txt"), { range: { offset: 6, length: 5 } });
  out["range"] = { text: ranged === null ? null : await ranged.text(), range: ranged?.range ?? null };
  const suffix = await bucket.get(key("a.txt"), { range: { suffix: 3 } });
  out["suffix"] = suffix === null ? null : await suffix.text();
  const etag = put?.etag ?? "";
  const matching = await bucket.get(key("a.txt"), { onlyIf: { etagMatches: etag } });
  out["only_if_match"] = matching !== null && "text" in matching ? await matching.text() : null;
  out["only_if_mismatch"] = shape(await bucket.get(key("a.txt"), { onlyIf: { etagMatches: "0123" } }));
  out["only_if_none_match"] = shape(await bucket.get(key("a.txt"), { onlyIf: { etagDoesNotMatch: etag } }));
  out["only_if_headers"] = shape(
    await bucket.get(key("a.txt"), { onlyIf: new Headers({ "if-none-match": `"${etag}"` }) }),
  );
  out["put_only_if_refused"] = await bucket.put(key("a.txt"), "no", { onlyIf: { etagMatches: "0123" } });
  out["put_only_if_uploaded_before"] = await bucket.put(key("a.txt"), "no", {
    onlyIf: { uploadedBefore: new Date(Date.UTC(2000, 0, 1)) },
  });
  out["after_refused_puts"] = await (await bucket.get(key("a.txt")))?.text();
  out["md5_mismatch"] = (
    await errorOf(() => bucket.put(key("f.txt"), "abc", { md5: "00000000000000000000000000000000" }))
  ).slice(0, 40);
  const all = await bucket.list({ prefix });
  out["list"] = {
    keys: all.objects.map((o) => o.key.slice(prefix.length)),
    sizes: all.objects.map((o) => o.size),
    truncated: all.truncated,
    prefixes: all.delimitedPrefixes,
  };
  const included = await bucket.list({ prefix, include: ["httpMetadata", "customMetadata"] });
  out["list_include"] = included.objects.map((o) => ({ http: o.httpMetadata, custom: o.customMetadata }));
  const delimited = await bucket.list({ prefix, delimiter: "/" });
  out["delimited"] = {
    keys: delimited.objects.map((o) => o.key.slice(prefix.length)),
    prefixes: delimited.delimitedPrefixes.map((p) => p.slice(prefix.length)),
  };
  const inDir = await bucket.list({ prefix: key("dir/"), delimiter: "/" });
  out["delimited_dir"] = {
    keys: inDir.objects.map((o) => o.key.slice(prefix.length)),
    prefixes: inDir.delimitedPrefixes.map((p) => p.slice(prefix.length)),
  };
  const first = await bucket.list({ prefix, limit: 2 });
  const rest = first.truncated ? await bucket.list({ prefix, limit: 10, cursor: first.cursor }) : null;
  out["pages"] = {
    first: first.objects.map((o) => o.key.slice(prefix.length)),
    truncated: first.truncated,
    has_cursor: first.truncated && typeof first.cursor === "string",
    rest: rest?.objects.map((o) => o.key.slice(prefix.length)) ?? null,
    rest_truncated: rest?.truncated ?? null,
  };
  const after = await bucket.list({ prefix, startAfter: key("b.json") });
  out["start_after"] = after.objects.map((o) => o.key.slice(prefix.length));
  await bucket.delete(key("a.txt"));
  await bucket.delete([key("b.json"), key("dir/c.bin"), key("never-there")]);
  out["deleted"] = await bucket.get(key("a.txt"));
  out["after_delete"] = (await bucket.list({ prefix })).objects.map((o) => o.key.slice(prefix.length));
  return out;
}
