import { env, exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { bucketPrefix } from "../platform/r2-binding.ts";
import type { DeployManifest } from "../schemas/deploy.schema.ts";
import { r2Cases } from "./r2-cases.ts";
import { ADMIN, BASE_URL, deployAndWait, singleModuleManifest, projectId, tenantJson } from "./deploy-helpers.ts";

/** A tenant with an R2 binding `FILES`: `/put?k=&v=`, `/get?k=`, `/list`, and the shared cases on `/cases`. */
function r2Manifest(project: string, version: string): DeployManifest {
  const source = `
const r2Cases = ${r2Cases.toString()};
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const k = url.searchParams.get("k") ?? "";
    if (url.pathname === "/put") {
      const object = await env.FILES.put(k, url.searchParams.get("v") ?? "", { httpMetadata: { contentType: "text/plain" } });
      return Response.json({ key: object.key, size: object.size });
    }
    if (url.pathname === "/get") {
      const object = await env.FILES.get(k);
      return Response.json({ value: object === null ? null : await object.text(), version: ${JSON.stringify(version)} });
    }
    if (url.pathname === "/list") {
      const listed = await env.FILES.list({ prefix: url.searchParams.get("prefix") ?? undefined });
      return Response.json(listed.objects.map((o) => o.key));
    }
    if (url.pathname === "/cases") return Response.json(await r2Cases(env.FILES, "cases-" + crypto.randomUUID() + "/"));
    return new Response("not found", { status: 404 });
  },
};
`;
  return singleModuleManifest(project, source, { r2_buckets: [{ binding: "FILES" }] });
}

describe("tenant R2 (local platform)", () => {
  it("T7.1 the bucket is provisioned once, kept across deploys, isolated per project and from Shipyard, and listed with its size", async ({
    expect,
  }) => {
    const a = projectId("r2-a");
    const b = projectId("r2-b");
    await deployAndWait(r2Manifest(a, "v1"));
    await deployAndWait(r2Manifest(b, "v1"));
    expect(await tenantJson(a, "/put?k=note.txt&v=hello")).toEqual({ key: "note.txt", size: 5 });
    expect(await tenantJson(a, "/get?k=note.txt")).toEqual({ value: "hello", version: "v1" });
    expect(await tenantJson(b, "/get?k=note.txt")).toEqual({ value: null, version: "v1" });
    expect(await tenantJson(b, "/list")).toEqual([]);
    // Keys live under the bucket's prefix of the one local tenant bucket, and the tenant never sees it.
    const name = `shipyard-${a}-files`;
    expect(await env.TENANT_R2.head(`${bucketPrefix(name)}note.txt`)).not.toBeNull();
    expect(await tenantJson(a, "/list")).toEqual(["note.txt"]);
    // A key that climbs out of the prefix is only a key (R2 keys are not paths).
    expect(await tenantJson(b, `/get?k=${encodeURIComponent(`../${name}/note.txt`)}`)).toEqual({
      value: null,
      version: "v1",
    });
    await deployAndWait(r2Manifest(a, "v2"));
    expect(await tenantJson(a, "/get?k=note.txt")).toEqual({ value: "hello", version: "v2" });
    const info = await exports.default.fetch(`${BASE_URL}/v1/projects/${a}`, { headers: ADMIN });
    const { resources } = await info.json<{ resources: unknown[] }>();
    expect(resources).toEqual([
      expect.objectContaining({ kind: "r2", binding: "FILES", name, id: name, size_bytes: 5 }),
    ]);
  });

  it("T7.2 the shim answers the R2 API cases exactly as a real R2 binding does", async ({ expect }) => {
    const project = projectId("r2-cases");
    await deployAndWait(r2Manifest(project, "v1"));
    // Through JSON, as the tenant answers it (so an absent field and an undefined one are alike).
    const real: unknown = JSON.parse(JSON.stringify(await r2Cases(env.TEST_R2, `cases-${crypto.randomUUID()}/`)));
    const shim = await tenantJson(project, "/cases");
    expect(shim).toEqual(real);
    expect(real).toMatchObject({
      get_text: "hello world",
      get_bytes: [0, 1, 255],
      range: { text: "world" },
      suffix: "rld",
      only_if_match: "hello world",
      only_if_mismatch: { has_body: false },
      put_only_if_refused: null,
      after_refused_puts: "hello world",
      delimited: { keys: ["a.txt", "b.json", "e.txt"], prefixes: ["dir/"] },
      pages: { first: ["a.txt", "b.json"], has_cursor: true },
      deleted: null,
      after_delete: ["dir/sub/d.txt", "e.txt"],
    });
  });
});
